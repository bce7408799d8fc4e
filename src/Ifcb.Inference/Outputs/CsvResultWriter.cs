using System.Globalization;
using System.Text;

namespace Ifcb.Inference.Outputs;

/// <summary>
/// One row per ROI (or image): its id, the winning class, the winning score, then every class's score in class order.
/// Header: <c>roi_id</c> (bins) or <c>image</c> (images), <c>class</c>, <c>score</c>, then the class labels. RFC 4180 quoting.
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
        var header = new List<string> { output.InputImages is null ? "roi_id" : "image", "class", "score" };
        header.AddRange(output.ClassLabels);
        writer.WriteLine(string.Join(',', header.Select(Quote)));
        var line = new StringBuilder();
        for (var i = 0; i < output.Scores.Count; i++)
        {
            var row = output.Scores.Row(i);
            var winner = output.Scores.Classes[i];
            line.Clear()
                .Append(Quote(output.RowId(i))).Append(',')
                .Append(Quote(output.ClassLabels[winner])).Append(',')
                .Append(row[winner].ToString("R", CultureInfo.InvariantCulture));
            foreach (var score in row)
                line.Append(',').Append(score.ToString("R", CultureInfo.InvariantCulture));
            writer.WriteLine(line);
        }
    }

    internal static string Quote(string field) =>
        field.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : field;
}
