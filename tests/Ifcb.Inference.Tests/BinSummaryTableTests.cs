using System.Buffers.Binary;
using System.Text;
using Ifcb.Data.Bins;
using Ifcb.Inference.Outputs;
using Ifcb.Reports;

namespace Ifcb.Inference.Tests;

/// <summary>run-summary.csv and run-summary.png from fixed inputs (no model needed).</summary>
public sealed class BinSummaryTableTests
{
    private static readonly string[] Classes = ["Mesodinium_major", "Strombidium,like", "detritus"];

    // ml_analyzed of testdata's v1 and v2 bins (see Ifcb.Data.Tests' MlAnalyzedTests for how they were derived).
    private static readonly MlAnalyzed V1Ml = new(0.003391470833333334, 0.8139530000000001, 1.251953, MlAnalyzedSource.Adc, null);
    private static readonly MlAnalyzed V2Ml = new(4.8850699041666665, 1172.416777, 1184.037103, MlAnalyzedSource.Adc, null);

    private static BinSummaryTable FixedTable()
    {
        var table = new BinSummaryTable(Classes);
        // Added out of time order: rows come out by timestamp.
        table.Add(BinId.Parse("D20130526T095207_IFCB013"), V2Ml, [1, 1, 1, 0, 2]);
        table.Add(BinId.Parse("IFCB5_2012_028_081515"), V1Ml, [0, 0, 2]);
        table.Add(BinId.Parse("D20150411T205456_IFCB012"), MlAnalyzed.Unknown("the ADC file is empty (no triggers)"), [2]);
        table.Add(BinId.Parse("D20160101T000000_IFCB010"), new MlAnalyzed(-0.5, -120, 10, MlAnalyzedSource.Adc, null), [1, 1]);
        return table;
    }

    [Fact]
    public void The_csv_has_one_row_per_bin_with_counts_and_concentrations()
    {
        using var stream = new MemoryStream();
        FixedTable().WriteCsv(stream);

        // Concentrations are Python's repr of count / ml_analyzed (shortest round-trip, as .NET's "R"): e.g.
        // python3 -c "print(repr(2/0.003391470833333334))" → 589.7146395430693.
        string[] expected =
        [
            "bin_id,timestamp,roi_count,ml_analyzed,Mesodinium_major_count,\"Strombidium,like_count\",detritus_count," +
            "Mesodinium_major_per_ml,\"Strombidium,like_per_ml\",detritus_per_ml,unclassified_count," +
            "Mesodinium_major_count_thresholded,\"Strombidium,like_count_thresholded\",detritus_count_thresholded," +
            "Mesodinium_major_per_ml_thresholded,\"Strombidium,like_per_ml_thresholded\",detritus_per_ml_thresholded",
            // Without thresholds the thresholded columns repeat the raw ones.
            "IFCB5_2012_028_081515,2012-01-28T08:15:15Z,3,0.003391470833333334,2,0,1,589.7146395430693,0,294.85731977153466," +
            "0,2,0,1,589.7146395430693,0,294.85731977153466",
            "D20130526T095207_IFCB013,2013-05-26T09:52:07Z,5,4.8850699041666665,1,3,1," +
            "0.20470536135973427,0.6141160840792028,0.20470536135973427," +
            "0,1,3,1,0.20470536135973427,0.6141160840792028,0.20470536135973427",
            // Unknown ml_analyzed: empty, and so are its concentrations.
            "D20150411T205456_IFCB012,2015-04-11T20:54:56Z,1,,0,0,1,,,,0,0,0,1,,,",
            // A computed but non-positive ml_analyzed is written as computed; no concentration divides by it.
            "D20160101T000000_IFCB010,2016-01-01T00:00:00Z,2,-0.5,0,2,0,,,,0,0,2,0,,,",
        ];
        Assert.Equal(string.Join('\n', expected) + "\n", Encoding.UTF8.GetString(stream.ToArray()));
    }

    [Fact]
    public void Thresholded_counts_leave_out_the_unclassified()
    {
        var table = new BinSummaryTable(Classes);
        // Five ROIs: winners 1 1 1 0 2; two of the class-1 winners are under its threshold.
        var row = table.Add(BinId.Parse("D20130526T095207_IFCB013"), V2Ml, [1, 1, 1, 0, 2], [-1, 1, -1, 0, 2]);
        Assert.Equal([1, 3, 1], row.ClassCounts);
        Assert.Equal([1, 1, 1], row.ThresholdedCounts);
        Assert.Equal(2, row.UnclassifiedCount);
        // python3 -c "print(repr(1/4.8850699041666665))" → 0.20470536135973427
        Assert.Equal(0.20470536135973427, row.ThresholdedConcentration(1));
        using var stream = new MemoryStream();
        table.WriteCsv(stream);
        Assert.EndsWith(",2,1,1,1,0.20470536135973427,0.20470536135973427,0.20470536135973427\n",
            Encoding.UTF8.GetString(stream.ToArray()), StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => table.Add(BinId.Parse("D20130526T095207_IFCB013"), V2Ml, [1, 1], [1]));
    }

    [Fact]
    public void Totals_pool_the_bins_with_ml_analyzed()
    {
        var totals = FixedTable().Totals(top: 3);

        Assert.Equal(4, totals.Bins);
        Assert.Equal(11, totals.Rois);
        Assert.Equal(4.888461374999999, totals.TotalMilliliters, 15);
        Assert.Equal(2, totals.BinsWithoutMl);
        // Most ROIs first; the 3-3 tie keeps the model's class order. Mean concentration = count in the two bins with
        // ml_analyzed ÷ their 4.888461374999999 mL (python3: 3/4.888461374999999 = 0.6136900283885337).
        Assert.Equal(
            [new("Strombidium,like", 5, 0.6136900283885337), new("Mesodinium_major", 3, 0.6136900283885337),
             new ClassTotal("detritus", 3, 0.40912668559235577)],
            totals.TopClasses);
        Assert.Single(FixedTable().Totals(top: 1).TopClasses);
    }

    [Fact]
    public void A_bin_added_from_its_files_gets_its_ml_analyzed_or_the_reason_it_has_none()
    {
        var table = new BinSummaryTable(Classes);
        var white = table.Add(BinId.Parse("D20130526T095207_IFCB013"), ReferenceModelFixture.WhiteBin, [0, 0]);
        Assert.Equal(4.8850699041666665, white.MlAnalyzed.Milliliters, 12);
        Assert.Equal(2 / white.MlAnalyzed.Milliliters, white.Concentration(0));

        var gone = Path.Combine(Path.GetTempPath(), "no-such-folder-" + Guid.NewGuid().ToString("N"), "D20200101T000000_IFCB101");
        var missing = table.Add(BinId.Parse("D20200101T000000_IFCB101"), gone, [1]);
        Assert.False(missing.MlAnalyzed.IsUsable);
        Assert.Contains("does not exist", missing.MlAnalyzed.Reason, StringComparison.Ordinal);
        Assert.Null(missing.Concentration(1));

        Assert.Throws<ArgumentException>(() => table.Add(BinId.Parse("D20200101T000000_IFCB101"), V2Ml, [3]));
    }

    [Fact]
    public void The_files_are_a_csv_and_a_png_of_the_plot_size()
    {
        var folder = Path.Combine(Path.GetTempPath(), "ifcb-summary-" + Guid.NewGuid().ToString("N"));
        try
        {
            var files = FixedTable().WriteFiles(Path.Combine(folder, "new"), "run x");

            var written = Path.Combine(folder, "new");
            Assert.Equal([Path.Combine(written, BinSummaryTable.CsvFileName), Path.Combine(written, BinSummaryTable.PngFileName)], files);
            Assert.StartsWith("bin_id,timestamp,", File.ReadAllText(files[0]), StringComparison.Ordinal);
            var png = File.ReadAllBytes(files[1]);
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A], png.Take(8));
            Assert.Equal("IHDR", Encoding.ASCII.GetString(png, 12, 4));
            Assert.Equal(ConcentrationPlot.Width, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)));
            Assert.Equal(ConcentrationPlot.Height, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));
            Assert.Equal("IEND", Encoding.ASCII.GetString(png, png.Length - 8, 4));
            Assert.Empty(Directory.GetFiles(written, "*.partial"));
        }
        finally
        {
            if (Directory.Exists(folder))
                Directory.Delete(folder, recursive: true);
        }
    }
}
