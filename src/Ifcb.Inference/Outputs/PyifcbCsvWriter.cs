using System.Globalization;
using System.Text;

namespace Ifcb.Inference.Outputs;

/// <summary>
/// pyifcb's "v4" class-scores CSV (<c>ifcb.data.products.class_scores</c>, <c>ClassScoresDirectory(path, version=4)</c>,
/// branch <c>class_scores_v4_csv</c> of joefutrelle/pyifcb): pyifcb finds it as <c>{BIN_ID}.csv</c> anywhere below the
/// directory, reads it with <c>pandas.read_csv(path, index_col='pid')</c>, takes the ROI number from the pid's digits
/// after its last underscore and every other column as a class. So: a header <c>pid</c> then the class labels in the
/// model's order; one row per ROI, its pid <c>{BIN_ID}_{ROI:00000}</c> (the IFCB ROI pid) then its scores (float32,
/// shortest round-trip). No comment lines and no other columns (pandas would read a comment as the header and a column as
/// a class), so this file carries no provenance or thresholded labels: write an <c>.h5</c> or <c>.json</c> beside it for
/// those. RFC 4180 quoting (pandas reads it). Bins only.
/// </summary>
public static class PyifcbCsvWriter
{
    /// <summary>pyifcb's name for this layout (its ClassScoresDirectory version).</summary>
    public const string Version = "v4";

    public static void Write(Stream destination, ClassificationOutput output)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(output);
        if (output.BinId is null)
            throw new ArgumentException("pyifcb's v4 CSV holds the ROIs of one bin; image runs write the platform's CSV.",
                nameof(output));
        using var writer = new StreamWriter(destination, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), leaveOpen: true)
        {
            NewLine = "\n",
        };
        writer.WriteLine(string.Join(',', output.ClassLabels.Prepend("pid").Select(CsvResultWriter.Quote)));
        var line = new StringBuilder();
        for (var i = 0; i < output.Scores.Count; i++)
        {
            line.Clear().Append(CsvResultWriter.Quote(output.RowId(i)));
            foreach (var score in output.Scores.Row(i))
                line.Append(',').Append(score.ToString("R", CultureInfo.InvariantCulture));
            writer.WriteLine(line);
        }
    }
}
