using System.Globalization;
using System.Text.Json;
using Ifcb.Models;
using Ifcb.Models.Checkpoints;
using Ifcb.Testing;

namespace Ifcb.Cli.Tests;

/// <summary>
/// <c>ifcb run</c> (local mode) writes run-summary.csv and run-summary.png beside the result files and prints the totals.
/// The model is an untrained squeezenet at 32 px, so which class wins is arbitrary: the printed totals are checked against
/// the counts in the CSV, and the white bin's 19 ROIs and 4.8850699041666665 mL (see Ifcb.Data.Tests' MlAnalyzedTests).
/// </summary>
public sealed class RunSummaryCliTests : IDisposable
{
    private const string WhiteLid = "D20130526T095207_IFCB013";
    private const double WhiteMl = 4.8850699041666665;
    private static readonly string WhiteFolder = Path.Combine(RepoPaths.Root, "testdata", "bins", "white");
    private readonly string _temp = Directory.CreateTempSubdirectory("ifcb-cli-summary-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private string TinyModel()
    {
        TorchSharp.torch.manual_seed(7);
        using var model = ModelZoo.Create("squeezenet", 3, false);
        var hparams = new ModelHparams("squeezenet", ["alpha", "beta", "gamma"], 32, null, false, 7, "tiny", "tiny", null,
            DateTimeOffset.UnixEpoch, "test");
        var path = Path.Combine(_temp, "tiny.ifcbmodel");
        using (var file = File.Create(path))
            Checkpoint.Save(file, hparams, model);
        return path;
    }

    [Fact]
    public async Task A_local_run_writes_the_summary_and_prints_the_totals()
    {
        var model = TinyModel();
        var outdir = Path.Combine(_temp, "out");

        var run = await CliRunner.RunAsync("run", WhiteFolder, model, "r1", "--outdir", outdir, "--outfile", "{BIN_ID}.csv");

        Assert.True(run.ExitCode == 0, run.Error);
        var csv = File.ReadAllLines(Path.Combine(outdir, "run-summary.csv"));
        Assert.Equal(
            "bin_id,timestamp,roi_count,ml_analyzed,alpha_count,beta_count,gamma_count,alpha_per_ml,beta_per_ml,gamma_per_ml," +
            "unclassified_count,alpha_count_thresholded,beta_count_thresholded,gamma_count_thresholded," +
            "alpha_per_ml_thresholded,beta_per_ml_thresholded,gamma_per_ml_thresholded", csv[0]);
        var row = Assert.Single(csv.Skip(1)).Split(',');
        Assert.Equal([WhiteLid, "2013-05-26T09:52:07Z", "19", "4.8850699041666665"], row[..4]);
        var counts = row[4..7].Select(c => int.Parse(c, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(19, counts.Sum());
        // The counts are the winners in the bin's own result file.
        var winners = File.ReadAllLines(Path.Combine(outdir, WhiteLid + ".csv")).Where(l => !l.StartsWith('#')).Skip(1)
            .Select(l => l.Split(',')[1]).ToList();
        Assert.Equal(new[] { "alpha", "beta", "gamma" }.Select(c => winners.Count(w => w == c)), counts);
        for (var c = 0; c < 3; c++)
            Assert.Equal(counts[c] / WhiteMl, double.Parse(row[7 + c], CultureInfo.InvariantCulture));

        var png = File.ReadAllBytes(Path.Combine(outdir, "run-summary.png"));
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png.Take(4));

        Assert.Contains("Totals: 1 bins, 19 ROIs, 4.885 mL analysed", run.Output, StringComparison.Ordinal);
        foreach (var c in Enumerable.Range(0, 3).Where(c => counts[c] > 0))
        {
            var name = new[] { "alpha", "beta", "gamma" }[c];
            var perMl = (counts[c] / WhiteMl).ToString("G4", CultureInfo.InvariantCulture);
            Assert.Contains($"  {name}: {counts[c]} ROIs, {perMl} cells/mL", run.Output, StringComparison.Ordinal);
        }
        Assert.Contains(Path.Combine(outdir, "run-summary.csv"), run.Output, StringComparison.Ordinal);

        // Again without --clobber: the bin is skipped, and the summary reads its counts back from its result file.
        File.Delete(Path.Combine(outdir, "run-summary.csv"));
        var json = await CliRunner.RunAsync("run", WhiteFolder, model, "r1", "--outdir", outdir, "--outfile", "{BIN_ID}.csv", "--json");
        Assert.True(json.ExitCode == 0, json.Error);
        using var report = JsonDocument.Parse(json.Output);
        Assert.Equal(1, report.RootElement.GetProperty("skipped_existing").GetInt32());
        Assert.Equal(csv, File.ReadAllLines(Path.Combine(outdir, "run-summary.csv")));
        var totals = report.RootElement.GetProperty("totals");
        Assert.Equal(1, totals.GetProperty("bins").GetInt32());
        Assert.Equal(19, totals.GetProperty("rois").GetInt64());
        Assert.Equal(WhiteMl, totals.GetProperty("total_milliliters").GetDouble());
        Assert.Equal(counts.Max(), totals.GetProperty("top_classes")[0].GetProperty("count").GetInt64());
    }
}
