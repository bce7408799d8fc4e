using System.Globalization;
using System.Text;

namespace Ifcb.Inference.Outputs;

/// <summary>
/// One row per ROI (or image): its id, the winning class, the winning score, the thresholded class, then every class's
/// score in class order. Header: <c>roi_id</c> (bins) or <c>image</c> (images), <c>class</c>, <c>score</c>,
/// <c>class_thresholded</c> (the winner, or <c>unclassified</c> when its score is below its class's threshold), then the
/// class labels. RFC 4180 quoting. Before the header, comment lines <c># name: value</c> carry the run's provenance (see
/// <see cref="RunProvenance"/>) and <c>class_thresholds_source</c>; pandas reads the file with <c>comment='#'</c>.
/// </summary>
public static class CsvResultWriter
{
    public static void Write(Stream destination, ClassificationOutput output)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(output);
        using var writer = new StreamWriter(destination, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), leaveOpen: true)
        {
            NewLine = "\n",
        };
        foreach (var (name, value) in output.Provenance?.Fields() ?? [])
            writer.WriteLine($"# {name}: {OneLine(RunProvenance.Text(value))}");
        writer.WriteLine($"# class_thresholds_source: {OneLine(output.Thresholds?.Source ?? "none")}");
        var header = new List<string> { output.InputImages is null ? "roi_id" : "image", "class", "score", "class_thresholded" };
        header.AddRange(output.ClassLabels);
        writer.WriteLine(string.Join(',', header.Select(Quote)));
        var thresholded = output.ThresholdedClasses();
        var line = new StringBuilder();
        for (var i = 0; i < output.Scores.Count; i++)
        {
            var row = output.Scores.Row(i);
            var winner = output.Scores.Classes[i];
            line.Clear()
                .Append(Quote(output.RowId(i))).Append(',')
                .Append(Quote(output.ClassLabels[winner])).Append(',')
                .Append(row[winner].ToString("R", CultureInfo.InvariantCulture)).Append(',')
                .Append(Quote(output.ThresholdedLabel(thresholded[i])));
            foreach (var score in row)
                line.Append(',').Append(score.ToString("R", CultureInfo.InvariantCulture));
            writer.WriteLine(line);
        }
    }

    internal static string Quote(string field) =>
        field.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : field;

    // A comment is one line whatever a model reference or file name holds.
    private static string OneLine(string text) => string.Concat(text.Select(c => char.IsControl(c) ? ' ' : c));
}
