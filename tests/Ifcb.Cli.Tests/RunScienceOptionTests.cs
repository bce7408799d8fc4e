using System.Security.Cryptography;
using System.Text.Json;
using Ifcb.Testing;

namespace Ifcb.Cli.Tests;

/// <summary><c>ifcb run --outfile-format v4</c>, <c>--thresholds</c> and the provenance of a local run from a file.</summary>
public sealed class RunScienceOptionTests : IDisposable
{
    private const string WhiteLid = "D20130526T095207_IFCB013";
    private static readonly string WhiteBin = Path.Combine(RepoPaths.Root, "testdata", "bins", "white");
    private readonly string _temp = Directory.CreateTempSubdirectory("ifcb-cli-science-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    [Fact]
    public async Task V4_writes_pyifcbs_csv_and_thresholds_from_a_file_label_the_json()
    {
        var checkpoint = SmallCheckpoint.Write(_temp, out var model);
        model.Dispose();

        var v4 = Path.Combine(_temp, "v4");
        var result = await CliRunner.RunAsync("run", WhiteBin, checkpoint, "r1", "--outfile-format", "v4", "--outdir", v4, "--batch", "8");
        Assert.True(result.ExitCode == 0, result.Error);
        var lines = File.ReadAllLines(Path.Combine(v4, "D2013", "D20130526", WhiteLid + ".csv"));
        Assert.Equal("pid,Mesodinium_major,Strombidium-like,\"detritus, small\"", lines[0]);
        Assert.Equal(20, lines.Length);
        Assert.StartsWith(WhiteLid + "_000", lines[1], StringComparison.Ordinal);

        // Every winner under a threshold of 1 is unclassified; the file names the checkpoint and its sha256.
        var thresholds = Path.Combine(_temp, "thresholds.csv");
        await File.WriteAllTextAsync(thresholds,
            "class,threshold\nMesodinium_major,1\nStrombidium-like,1\n\"detritus, small\",1\n");
        var json = Path.Combine(_temp, "json");
        result = await CliRunner.RunAsync("run", WhiteBin, checkpoint, "r2", "--thresholds", thresholds, "--outdir", json,
            "--outfile", "{BIN_ID}.json", "--batch", "8");
        Assert.True(result.ExitCode == 0, result.Error);
        using var document = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(json, WhiteLid + ".json")));
        var root = document.RootElement;
        Assert.Equal("file:thresholds.csv", root.GetProperty("class_thresholds_source").GetString());
        Assert.All(root.GetProperty("output_classes_thresholded").EnumerateArray(), e => Assert.Equal(-1, e.GetInt32()));
        Assert.Equal("r2", root.GetProperty("run_id").GetString());
        Assert.Equal("file", root.GetProperty("model_source").GetString());
        Assert.Equal("model.ifcbmodel", root.GetProperty("checkpoint_file").GetString());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(checkpoint))),
            root.GetProperty("checkpoint_sha256").GetString());
    }

    [Fact]
    public async Task The_new_flags_are_refused_for_a_remote_run_and_bad_values_are_usage_errors()
    {
        var remote = await CliRunner.RunAsync("run", WhiteBin, "plankton@production", "r1", "--outfile-format", "v4", "--remote",
            "--server", "http://127.0.0.1:9");
        Assert.Equal(ExitCodes.Usage, remote.ExitCode);
        Assert.Contains("run locally only", remote.Error, StringComparison.Ordinal);
        var unknown = await CliRunner.RunAsync("run", WhiteBin, "model.ifcbmodel", "r1", "--outfile-format", "v5");
        Assert.Equal(ExitCodes.Usage, unknown.ExitCode);
    }
}
