using System.CommandLine;
using Ifcb.Protos;

namespace Ifcb.Cli.Tests;

/// <summary><c>ifcb sweep</c> and <c>ifcb sweeps</c>: flags, the grid's comma-separated axes, the leaderboard table.</summary>
public sealed class SweepCliTests
{
    private static void AssertParses(ParseResult parse) =>
        Assert.True(parse.Errors.Count == 0, string.Join("; ", parse.Errors.Select(e => e.Message)));

    [Fact]
    public void Sweep_takes_axes_base_options_metric_and_register_best()
    {
        var parse = CliRunner.Parse("sweep", "data/src", "--arch", "resnet18,densenet121", "--lr", "1e-3,3e-4", "--class-weights",
            "none,balanced", "--train-id", "grid", "--untrain", "--img-norm", "auto", "--seed", "7", "--emax", "1", "--emin", "1",
            "--metric", "val_loss", "--direction", "min", "--register-best", "winner", "--detach", "--server", "http://localhost:1");
        AssertParses(parse);
        Assert.Equal("resnet18,densenet121", parse.GetValue<string>("--arch"));
        Assert.Equal("1e-3,3e-4", parse.GetValue<string>("--lr"));
        Assert.Equal("grid", parse.GetValue<string>("--train-id"));
        Assert.Equal("val_loss", parse.GetValue<string>("--metric"));
        Assert.Equal("min", parse.GetValue<string>("--direction"));
        Assert.Equal("winner", parse.GetValue<string>("--register-best"));
        Assert.True(parse.GetValue<bool>("--detach"));

        var defaults = CliRunner.Parse("sweep", "src", "--arch", "resnet18");
        AssertParses(defaults);
        Assert.Equal("f1_weighted", defaults.GetValue<string>("--metric"));
        Assert.Equal("sweep", defaults.GetValue<string>("--train-id"));
        Assert.NotEmpty(CliRunner.Parse("sweep", "src", "--arch", "resnet18", "--metric", "auc").Errors);
        Assert.NotEmpty(CliRunner.Parse("sweep", "src", "--arch", "resnet18", "--direction", "up").Errors);
    }

    [Theory]
    [InlineData("list")]
    [InlineData("show", "0123456789abcdef0123456789abcdef")]
    [InlineData("watch", "0123456789abcdef0123456789abcdef")]
    [InlineData("cancel", "0123456789abcdef0123456789abcdef")]
    public void Sweeps_subcommands_parse(params string[] args) => AssertParses(CliRunner.Parse(["sweeps", .. args]));

    [Fact]
    public void Comma_separated_values_become_the_axes_and_the_first_arch_the_base_model()
    {
        var request = SweepCommands.BuildRequest(new Dictionary<string, string?>
        {
            ["--arch"] = "resnet18, densenet121", ["--lr"] = "1e-3,3e-4", ["--optimizer"] = "adam,sgd", ["--weight-decay"] = "0,0.01",
            ["--lr-schedule"] = "none,cosine", ["--class-weights"] = "none,balanced", ["--sampler"] = "none", ["--batch"] = "8,16",
            ["--resize"] = "32",
        }, "ds");
        Assert.Equal(["resnet18", "densenet121"], request.Model);
        Assert.Equal([1e-3, 3e-4], request.Lr);
        Assert.Equal(["adam", "sgd"], request.Optimizer);
        Assert.Equal([0, 0.01], request.WeightDecay);
        Assert.Equal(["none", "cosine"], request.LrSchedule);
        Assert.Equal(["none", "balanced"], request.ClassWeights);
        Assert.Equal(["none"], request.Sampler);
        Assert.Equal([8, 16], request.Batch);
        Assert.Equal([32], request.Resize);
        Assert.Equal(("ds", "resnet18", ""), (request.Base.Dataset, request.Base.Model, request.Base.ClassWeightsCsv));
    }

    [Fact]
    public void A_class_weights_file_becomes_the_file_mode_with_its_text_on_the_base_request()
    {
        var file = Path.GetTempFileName();
        var other = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "a,1\nb,2\n");
            File.WriteAllText(other, "a,3\nb,4\n");
            var request = SweepCommands.BuildRequest(new Dictionary<string, string?>
            {
                ["--arch"] = "resnet18", ["--class-weights"] = $"none,{file}",
            }, "ds");
            Assert.Equal(["none", "file"], request.ClassWeights);
            Assert.Equal("a,1\nb,2\n", request.Base.ClassWeightsCsv);
            var twoFiles = Assert.Throws<UsageException>(() => SweepCommands.BuildRequest(new Dictionary<string, string?>
            {
                ["--arch"] = "resnet18", ["--class-weights"] = $"{file},{other}",
            }, "ds"));
            Assert.Contains("more than one file", twoFiles.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
            File.Delete(other);
        }
    }

    [Theory]
    [InlineData("--lr", "1e-3,fast", "--lr: 'fast' is not a number")]
    [InlineData("--batch", "8,1.5", "--batch: '1.5' is not a number")]
    [InlineData("--lr", "1e-3,,3e-4", "has an empty value")]
    [InlineData("--class-weights", "none,missing.csv", "neither none, balanced nor an existing")]
    public void Bad_axis_values_are_usage_errors_naming_the_option(string option, string value, string message)
    {
        var error = Assert.Throws<UsageException>(() => SweepCommands.BuildRequest(new Dictionary<string, string?>
        {
            ["--arch"] = "resnet18", [option] = value,
        }, "ds"));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_sweep_needs_an_arch() =>
        Assert.Contains("--arch is required", Assert.Throws<UsageException>(() =>
            SweepCommands.BuildRequest(new Dictionary<string, string?> { ["--lr"] = "1e-3" }, "ds")).Message, StringComparison.Ordinal);

    [Fact]
    public void The_leaderboard_shows_rank_axes_state_and_metric_best_first()
    {
        var sweep = new Sweep
        {
            SweepId = "s1", State = JobState.Running, Metric = "f1_weighted", Direction = "max", Trials = 2, TrialsEnded = 1,
            Leaderboard =
            {
                new SweepTrial { Index = 1, Rank = 1, State = JobState.Succeeded, Metric = 0.8125, BestEpoch = 0, Epochs = 1, JobId = "j1",
                    Params = { ["lr"] = "0.0003" } },
                new SweepTrial { Index = 0, State = JobState.Running, BestEpoch = -1, JobId = "j0", Params = { ["lr"] = "0.001" } },
            },
        };
        using var output = new StringWriter();
        new CliContext(output, TextWriter.Null, _ => null).Console.Write(SweepCommands.Leaderboard(sweep));
        var lines = output.ToString().Split('\n');
        Assert.Contains(lines, l => l.Contains("1/2 trials ended", StringComparison.Ordinal));
        var first = Array.FindIndex(lines, l => l.Contains("0.0003", StringComparison.Ordinal));
        var second = Array.FindIndex(lines, l => l.Contains("0.001 ", StringComparison.Ordinal));
        Assert.True(first >= 0 && second > first, output.ToString());
        Assert.Contains("0.8125", lines[first], StringComparison.Ordinal);
        Assert.Contains("succeeded", lines[first], StringComparison.Ordinal);
        Assert.Contains("running", lines[second], StringComparison.Ordinal);
    }

    [Fact]
    public void A_trial_line_names_its_values_state_worker_and_metric()
    {
        var running = new SweepTrial { Index = 2, State = JobState.Running, Worker = "training-1", BestEpoch = -1, Params = { ["lr"] = "0.001" } };
        Assert.Equal("trial 2 (lr=0.001): running on training-1", SweepCommands.TrialLine(running));
        var done = new SweepTrial { Index = 0, State = JobState.Succeeded, Metric = 0.5, BestEpoch = 3, Params = { ["lr"] = "0.0003" } };
        Assert.Equal("trial 0 (lr=0.0003): succeeded, metric 0.5000 at epoch 3", SweepCommands.TrialLine(done));
        var failed = new SweepTrial { Index = 1, State = JobState.Failed, BestEpoch = -1, Error = "out of memory" };
        Assert.Equal("trial 1 (): failed: out of memory", SweepCommands.TrialLine(failed));
    }
}
