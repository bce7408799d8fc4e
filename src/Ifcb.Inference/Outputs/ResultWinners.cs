using System.Text;
using System.Text.Json;
using PureHDF;

namespace Ifcb.Inference.Outputs;

/// <summary>A result file's winning class per row and its thresholded class (<see cref="ClassThresholds.UnclassifiedIndex"/>
/// = unclassified; the winner for files written without thresholded classes).</summary>
public sealed record ResultLabels(int[] Winners, int[] Thresholded);

/// <summary>
/// Reads the winning class of every row back from a result file this platform wrote (<c>.h5</c>, <c>.json</c> or
/// <c>.csv</c>, either CSV layout), so a run that skips bins whose outputs exist (no <c>--clobber</c>) still summarises
/// them without classifying them again.
/// </summary>
public static class ResultWinners
{
    /// <summary>The 0-based winning class per row, in the order of <paramref name="classes"/>.</summary>
    /// <exception cref="InvalidDataException">The file is unreadable, or its class labels are not <paramref name="classes"/>
    /// (it was written by another model).</exception>
    public static int[] Read(string path, IReadOnlyList<string> classes) => ReadLabels(path, classes).Winners;

    /// <summary>
    /// The winning and the thresholded class per row (pyifcb's v4 CSV and files written before thresholds have no
    /// thresholded classes: the winners stand in for them).
    /// </summary>
    /// <exception cref="InvalidDataException">As <see cref="Read"/>.</exception>
    public static ResultLabels ReadLabels(string path, IReadOnlyList<string> classes)
    {
        ArgumentNullException.ThrowIfNull(classes);
        try
        {
            var (labels, winners, thresholded) = Path.GetExtension(path).ToLowerInvariant() switch
            {
                ".h5" => ReadHdf5(path),
                ".json" => ReadJson(path),
                ".csv" => ReadCsv(path),
                _ => throw new InvalidDataException($"{path}: not a result file (.h5, .json or .csv)."),
            };
            if (!labels.SequenceEqual(classes, StringComparer.Ordinal))
                throw new InvalidDataException(
                    $"{path} has classes [{string.Join(", ", labels)}], not this model's [{string.Join(", ", classes)}]; " +
                    "it was written by another model (run with --clobber to redo it).");
            if (winners.FirstOrDefault(w => (uint)w >= (uint)labels.Count, -1) is var bad and >= 0)
                throw new InvalidDataException($"{path}: winning class {bad} is not one of its {labels.Count} classes.");
            thresholded ??= winners;
            if (thresholded.Length != winners.Length
                || thresholded.Any(t => t != ClassThresholds.UnclassifiedIndex && (uint)t >= (uint)labels.Count))
                throw new InvalidDataException($"{path}: its thresholded classes do not fit its {winners.Length} rows and classes.");
            return new ResultLabels(winners, thresholded);
        }
        // Whatever a foreign or damaged file makes the JSON or HDF5 reader throw, the caller needs one answer: not readable.
        catch (Exception e) when (e is not InvalidDataException and not OutOfMemoryException)
        {
            throw new InvalidDataException($"{path} cannot be read back as a result file: {e.Message}", e);
        }
    }

    private static (IReadOnlyList<string>, int[], int[]?) ReadHdf5(string path)
    {
        using var file = H5File.OpenRead(path);
        return (file.Dataset("class_labels").Read<string[]>(), file.Dataset("output_classes").Read<int[]>(),
            file.LinkExists("output_classes_thresholded") ? file.Dataset("output_classes_thresholded").Read<int[]>() : null);
    }

    private static (IReadOnlyList<string>, int[], int[]?) ReadJson(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = document.RootElement;
        return ([.. root.GetProperty("class_labels").EnumerateArray().Select(e => e.GetString()!)],
            [.. root.GetProperty("output_classes").EnumerateArray().Select(e => e.GetInt32())],
            root.TryGetProperty("output_classes_thresholded", out var thresholded)
                ? [.. thresholded.EnumerateArray().Select(e => e.GetInt32())]
                : null);
    }

    /// <summary>
    /// <see cref="CsvResultWriter"/>'s layout (comment lines, then id, class (label), score, [class_thresholded,] one column
    /// per class label), or pyifcb's v4 layout (<see cref="PyifcbCsvWriter"/>: pid, then one score column per class; the
    /// winner is the first highest score, as RUN picks it).
    /// </summary>
    private static (IReadOnlyList<string>, int[], int[]?) ReadCsv(string path)
    {
        using var reader = new StreamReader(path, Encoding.UTF8);
        string? first;
        do
            first = reader.ReadLine();
        while (first is not null && first.StartsWith('#'));
        var header = Fields(first ?? throw new InvalidDataException($"{path} is empty."));
        var v4 = header.Count >= 2 && header[0] == "pid";
        var hasThresholded = !v4 && header.Count > 3 && header[3] == "class_thresholded";
        var skip = v4 ? 1 : hasThresholded ? 4 : 3;
        if (!v4 && (header.Count < 4 || header[1] != "class" || header[2] != "score"))
            throw new InvalidDataException($"{path}: the header is neither roi_id,class,score,… nor pyifcb's pid,<class labels>.");
        var labels = header.Skip(skip).ToList();
        var index = labels.Select((label, i) => (label, i)).ToDictionary(p => p.label, p => p.i, StringComparer.Ordinal);
        var winners = new List<int>();
        var thresholded = new List<int>();
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0)
                continue;
            var fields = Fields(line);
            if (v4)
            {
                winners.Add(fields.Count == header.Count ? FirstMax(fields.Skip(1))
                    : throw new InvalidDataException($"{path}: row {winners.Count + 1} has {fields.Count} fields, not {header.Count}."));
                continue;
            }
            winners.Add(fields.Count > 1 && index.TryGetValue(fields[1], out var winner)
                ? winner
                : throw new InvalidDataException($"{path}: row {winners.Count + 1} names no known class."));
            if (hasThresholded)
                thresholded.Add(fields[3] == ClassThresholds.Unclassified ? ClassThresholds.UnclassifiedIndex
                    : index.TryGetValue(fields[3], out var kept) ? kept
                    : throw new InvalidDataException($"{path}: row {winners.Count} has no known thresholded class."));
        }
        return (labels, [.. winners], hasThresholded ? [.. thresholded] : null);
    }

    private static int FirstMax(IEnumerable<string> scores)
    {
        var values = scores.Select(s => float.Parse(s, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        var best = 0;
        for (var c = 1; c < values.Count; c++)
        {
            if (values[c] > values[best])
                best = c;
        }
        return best;
    }

    /// <summary>One RFC 4180 line (fields may be quoted, with "" for a quote); the writer never puts newlines in a field.</summary>
    internal static List<string> Fields(string line)
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quoted)
            {
                if (c != '"')
                    field.Append(c);
                else if (i + 1 < line.Length && line[i + 1] == '"')
                    field.Append(line[++i]);
                else
                    quoted = false;
            }
            else if (c == '"')
                quoted = true;
            else if (c == ',')
            {
                fields.Add(field.ToString());
                field.Clear();
            }
            else
                field.Append(c);
        }
        fields.Add(field.ToString());
        return fields;
    }
}
