using Ifcb.Data.Bins;
using Ifcb.Inference.Outputs;

namespace Ifcb.Inference.Tests;

/// <summary>Winners read back from result files, for bins a run without --clobber skips.</summary>
public sealed class ResultWinnersTests : IDisposable
{
    private static readonly string[] Classes = ["Mesodinium_major", "Strombidium, \"like\"", "detritus"];
    private static readonly int[] Winners = [2, 0, 1, 1, 2];
    private readonly string _folder = Directory.CreateTempSubdirectory("ifcb-winners-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string Write(string name, IReadOnlyList<string> classes)
    {
        var scores = new float[Winners.Length * classes.Count];
        for (var i = 0; i < Winners.Length; i++)
            scores[i * classes.Count + Winners[i]] = 1;
        var output = ClassificationOutput.ForBin("m", "2024-01-01T00:00:00Z", classes,
            new ClassScores(Winners.Length, classes.Count, scores, Winners), "D20130526T095207_IFCB013", [1, 2, 3, 5, 8]);
        var path = Path.Combine(_folder, name);
        ResultFile.Write(path, output);
        return path;
    }

    [Theory]
    [InlineData("r.h5")]
    [InlineData("r.json")]
    [InlineData("r.csv")]
    public void Every_format_gives_back_the_winners(string name) =>
        Assert.Equal(Winners, ResultWinners.Read(Write(name, Classes), Classes));

    [Fact]
    public void A_file_from_another_model_or_not_a_result_is_refused()
    {
        var other = Write("other.json", ["a", "b", "c"]);
        var foreign = Assert.Throws<InvalidDataException>(() => ResultWinners.Read(other, Classes));
        Assert.Contains("another model", foreign.Message, StringComparison.Ordinal);

        var garbage = Path.Combine(_folder, "garbage.h5");
        File.WriteAllText(garbage, "not hdf5");
        Assert.Throws<InvalidDataException>(() => ResultWinners.Read(garbage, Classes));
        var truncated = Path.Combine(_folder, "cut.json");
        File.WriteAllText(truncated, "{\"class_labels\": [");
        Assert.Throws<InvalidDataException>(() => ResultWinners.Read(truncated, Classes));
    }

    [Fact]
    public void A_skipped_bin_is_summarised_from_its_first_readable_output_or_left_out_with_the_reason()
    {
        var table = new BinSummaryTable(Classes);
        var garbage = Path.Combine(_folder, "bad.csv");
        File.WriteAllText(garbage, "x\n");
        var white = BinId.Parse("D20130526T095207_IFCB013");

        var row = table.AddFromOutputs(white, ReferenceModelFixture.WhiteBin, [garbage, Write("good.csv", Classes)]);

        Assert.NotNull(row);
        Assert.Equal([1, 2, 2], row.ClassCounts);
        Assert.Equal(5, row.RoiCount);
        Assert.True(row.MlAnalyzed.IsUsable);
        Assert.Null(table.AddFromOutputs(BinId.Parse("IFCB5_2012_028_081515"), ReferenceModelFixture.WhiteBin, [garbage]));
        var leftOut = Assert.Single(table.LeftOut);
        Assert.Equal("IFCB5_2012_028_081515", leftOut.BinId);
        Assert.Contains("bad.csv", leftOut.Reason, StringComparison.Ordinal);
    }
}
