using System.Text;
using System.Text.Json;
using PureHDF;

namespace Ifcb.Inference.Outputs;

/// <summary>
/// Reads the winning class of every row back from a result file this platform wrote (<c>.h5</c>, <c>.json</c> or
/// <c>.csv</c>), so a run that skips bins whose outputs exist (no <c>--clobber</c>) still summarises them without
/// classifying them again.
/// </summary>
public static class ResultWinners
{
    /// <summary>The 0-based winning class per row, in the order of <paramref name="classes"/>.</summary>
    /// <exception cref="InvalidDataException">The file is unreadable, or its class labels are not <paramref name="classes"/>
    /// (it was written by another model).</exception>
    public static int[] Read(string path, IReadOnlyList<string> classes)
    {
        ArgumentNullException.ThrowIfNull(classes);
        try
        {
            var (labels, winners) = Path.GetExtension(path).ToLowerInvariant() switch
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
            return winners;
        }
        // Whatever a foreign or damaged file makes the JSON or HDF5 reader throw, the caller needs one answer: not readable.
        catch (Exception e) when (e is not InvalidDataException and not OutOfMemoryException)
        {
            throw new InvalidDataException($"{path} cannot be read back as a result file: {e.Message}", e);
        }
    }

    private static (IReadOnlyList<string>, int[]) ReadHdf5(string path)
    {
        using var file = H5File.OpenRead(path);
        return (file.Dataset("class_labels").Read<string[]>(), file.Dataset("output_classes").Read<int[]>());
    }

    private static (IReadOnlyList<string>, int[]) ReadJson(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = document.RootElement;
        return ([.. root.GetProperty("class_labels").EnumerateArray().Select(e => e.GetString()!)],
            [.. root.GetProperty("output_classes").EnumerateArray().Select(e => e.GetInt32())]);
    }

    /// <summary>
    /// <see cref="CsvResultWriter"/>'s layout (comment lines, then id, class (label), score, [class_thresholded,] one column
    /// per class label), or pyifcb's v4 layout (<see cref="PyifcbCsvWriter"/>: pid, then one score column per class; the
    /// winner is the first highest score, as RUN picks it).
    /// </summary>
    private static (IReadOnlyList<string>, int[]) ReadCsv(string path)
    {
        using var reader = new StreamReader(path, Encoding.UTF8);
        string? first;
        do
            first = reader.ReadLine();
        while (first is not null && first.StartsWith('#'));
        var header = Fields(first ?? throw new InvalidDataException($"{path} is empty."));
        var v4 = header.Count >= 2 && header[0] == "pid";
        var skip = v4 ? 1 : header.Count > 3 && header[3] == "class_thresholded" ? 4 : 3;
        if (!v4 && (header.Count < 4 || header[1] != "class" || header[2] != "score"))
            throw new InvalidDataException($"{path}: the header is neither roi_id,class,score,… nor pyifcb's pid,<class labels>.");
        var labels = header.Skip(skip).ToList();
        var index = labels.Select((label, i) => (label, i)).ToDictionary(p => p.label, p => p.i, StringComparer.Ordinal);
        var winners = new List<int>();
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0)
                continue;
            var fields = Fields(line);
            if (v4)
                winners.Add(fields.Count == header.Count ? FirstMax(fields.Skip(1))
                    : throw new InvalidDataException($"{path}: row {winners.Count + 1} has {fields.Count} fields, not {header.Count}."));
            else
                winners.Add(fields.Count > 1 && index.TryGetValue(fields[1], out var winner)
                    ? winner
                    : throw new InvalidDataException($"{path}: row {winners.Count + 1} names no known class."));
        }
        return (labels, [.. winners]);
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
