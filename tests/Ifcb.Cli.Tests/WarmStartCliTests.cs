using System.Text.Json;
using Ifcb.Testing;

namespace Ifcb.Cli.Tests;

/// <summary><c>ifcb train --from FILE --freeze features</c> in local mode, and the refusals of the new flags.</summary>
public sealed class WarmStartCliTests : IDisposable
{
    private static readonly string Sample = Path.Combine(RepoPaths.Root, "testdata", "training-sample");
    private readonly string _temp = Directory.CreateTempSubdirectory("ifcb-cli-warm-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    [Fact]
    public async Task A_local_fine_tune_starts_from_the_file_and_records_it()
    {
        var parent = Path.Combine(_temp, "parent");
        var first = await CliRunner.RunAsync("train", Sample, "squeezenet1_1", "parent", "--untrain", "--resize", "32", "--batch", "8",
            "--emax", "1", "--emin", "1", "--seed", "2", "--outdir", parent, "--json");
        Assert.True(first.ExitCode == 0, first.Error);

        var child = Path.Combine(_temp, "child");
        var tuned = await CliRunner.RunAsync("train", Sample, "squeezenet1_1", "child", "--from", Path.Combine(parent, "parent.ifcbmodel"),
            "--freeze", "features", "--resize", "32", "--batch", "8", "--emax", "1", "--emin", "1", "--seed", "2", "--outdir", child,
            "--json");
        Assert.True(tuned.ExitCode == 0, tuned.Error);
        using var args = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(child, "args.json")));
        Assert.EndsWith("parent.ifcbmodel", args.RootElement.GetProperty("from").GetString(), StringComparison.Ordinal);
        Assert.Equal("features", args.RootElement.GetProperty("freeze").GetString());
        // No ImageNet weights were needed (squeezenet1_1 has none here): the run started from the file.
        Assert.False(args.RootElement.GetProperty("pretrained").GetBoolean());
    }

    [Fact]
    public async Task Bad_warm_start_flags_are_usage_errors()
    {
        var missing = await CliRunner.RunAsync("train", Sample, "resnet18", "x", "--untrain", "--from", Path.Combine(_temp, "none.ifcbmodel"),
            "--outdir", Path.Combine(_temp, "x"));
        Assert.Equal(ExitCodes.NotFound, missing.ExitCode);
        var unfrozen = await CliRunner.RunAsync("train", Sample, "resnet18", "y", "--untrain", "--freeze-epochs", "1",
            "--outdir", Path.Combine(_temp, "y"));
        Assert.Equal(ExitCodes.Usage, unfrozen.ExitCode);
        Assert.Contains("freeze-epochs", unfrozen.Error, StringComparison.Ordinal);
    }
}
