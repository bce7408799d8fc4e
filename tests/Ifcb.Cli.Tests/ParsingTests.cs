using System.CommandLine;
using Grpc.Core;
using Ifcb.Contracts;

namespace Ifcb.Cli.Tests;

/// <summary>Every verb's flags parse as neuston spells them; bad flags are usage errors (exit 2).</summary>
public sealed class ParsingTests
{
    private static void AssertParses(ParseResult parse) =>
        Assert.True(parse.Errors.Count == 0, string.Join("; ", parse.Errors.Select(e => e.Message)));

    [Fact]
    public void Train_takes_every_neuston_flag()
    {
        var parse = CliRunner.Parse("train", "data/src", "inception_v3", "run1", "--untrain", "--img-norm", "0.667", "0.161", "--seed", "42",
            "--split", "70:30", "--class-config", "classes.csv", "config1", "--class-min", "3", "--class-max", "100", "--emax", "20", "--emin", "5",
            "--estop", "0", "--flip", "xy+V", "--batch", "16", "--swap", "--resize", "128", "--outdir", "out/{TRAIN_ID}", "--model-id", "m1",
            "--register", "plankton", "--weights", "/w", "--dataset", "ds", "--device", "cpu", "--no-wait");
        AssertParses(parse);
        Assert.Equal("data/src", parse.GetValue<string>("SRC"));
        Assert.Equal("inception_v3", parse.GetValue<string>("MODEL"));
        Assert.Equal("run1", parse.GetValue<string>("TRAIN_ID"));
        Assert.True(parse.GetValue<bool>("--untrain"));
        Assert.Equal(["0.667", "0.161"], parse.GetValue<string[]>("--img-norm")!);
        Assert.Equal(42, parse.GetValue<long>("--seed"));
        Assert.Equal("70:30", parse.GetValue<string>("--split"));
        Assert.Equal(["classes.csv", "config1"], parse.GetValue<string[]>("--class-config")!);
        Assert.Equal(3, parse.GetValue<int>("--class-min"));
        Assert.Equal(100, parse.GetValue<int?>("--class-max"));
        Assert.Equal(20, parse.GetValue<int>("--emax"));
        Assert.Equal(5, parse.GetValue<int>("--emin"));
        Assert.Equal(0, parse.GetValue<int>("--estop"));
        Assert.Equal("xy+V", parse.GetValue<string>("--flip"));
        Assert.Equal(16, parse.GetValue<int>("--batch"));
        Assert.True(parse.GetValue<bool>("--swap"));
        Assert.Equal(128, parse.GetValue<int?>("--resize"));
        Assert.Equal("out/{TRAIN_ID}", parse.GetValue<string>("--outdir"));
        Assert.Equal("plankton", parse.GetValue<string>("--register"));
    }

    [Fact]
    public void Train_takes_optimizer_and_class_balancing_flags()
    {
        var parse = CliRunner.Parse("train", "src", "resnet18", "t", "--lr", "3e-4", "--optimizer", "adamw", "--weight-decay", "0.05",
            "--lr-schedule", "cosine", "--class-weights", "weights.csv", "--sampler", "balanced");
        AssertParses(parse);
        Assert.Equal(3e-4, parse.GetValue<double?>("--lr"));
        Assert.Equal("adamw", parse.GetValue<string>("--optimizer"));
        Assert.Equal(0.05, parse.GetValue<double?>("--weight-decay"));
        Assert.Equal("cosine", parse.GetValue<string>("--lr-schedule"));
        Assert.Equal("weights.csv", parse.GetValue<string>("--class-weights"));
        Assert.Equal("balanced", parse.GetValue<string>("--sampler"));
        Assert.Equal(0.01, CliRunner.Parse("train", "src", "resnet18", "t", "--learning-rate", "0.01").GetValue<double?>("--lr"));

        var defaults = CliRunner.Parse("train", "src", "resnet18", "t");
        Assert.Null(defaults.GetValue<double?>("--lr"));
        Assert.Equal("adam", defaults.GetValue<string>("--optimizer"));
        Assert.Null(defaults.GetValue<double?>("--weight-decay"));
        Assert.Equal("none", defaults.GetValue<string>("--lr-schedule"));
        Assert.Equal("none", defaults.GetValue<string>("--class-weights"));
        Assert.Equal("none", defaults.GetValue<string>("--sampler"));
    }

    [Fact]
    public void Class_weights_are_a_mode_or_a_csv_file_read_for_both_modes()
    {
        Assert.Equal(("balanced", ""), TrainCommand.ReadClassWeights("balanced"));
        Assert.Equal(("none", ""), TrainCommand.ReadClassWeights("none"));
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "class,weight\na,2\n");
            Assert.Equal(("file", "class,weight\na,2\n"), TrainCommand.ReadClassWeights(file));
        }
        finally
        {
            File.Delete(file);
        }
        Assert.Throws<UsageException>(() => TrainCommand.ReadClassWeights("no-such-weights.csv"));
    }

    [Fact]
    public void Train_defaults_are_neustons()
    {
        var parse = CliRunner.Parse("train", "src", "resnet18", "t");
        AssertParses(parse);
        Assert.False(parse.GetValue<bool>("--untrain"));
        Assert.Equal(ImgNormChoice.None, ImgNormChoice.Parse(parse.GetValue<string[]>("--img-norm")));
        Assert.Equal(0, parse.GetValue<long>("--seed"));
        Assert.Equal("80:20", parse.GetValue<string>("--split"));
        Assert.Equal(2, parse.GetValue<int>("--class-min"));
        Assert.Null(parse.GetValue<int?>("--class-max"));
        Assert.Equal(60, parse.GetValue<int>("--emax"));
        Assert.Equal(10, parse.GetValue<int>("--emin"));
        Assert.Equal(10, parse.GetValue<int>("--estop"));
        Assert.Equal(108, parse.GetValue<int>("--batch"));
        Assert.Equal("training-output/{TRAIN_ID}", parse.GetValue<string>("--outdir"));
    }

    [Theory]
    [InlineData(new[] { "--img-norm", "0.667", "0.161" }, 0.667, 0.161)]
    [InlineData(new[] { "--img-norm", "0.667 0.161" }, 0.667, 0.161)]
    [InlineData(new[] { "--img-norm", "0.1,0.2,0.3", "0.4,0.5,0.6" }, 0.1, 0.4)]
    public void Img_norm_takes_two_tokens_or_one_quoted_pair(string[] flag, double mean0, double std0)
    {
        var parse = CliRunner.Parse(["train", "src", "resnet18", "t", .. flag, "--untrain"]);
        AssertParses(parse);
        Assert.True(parse.GetValue<bool>("--untrain"));
        var choice = ImgNormChoice.Parse(parse.GetValue<string[]>("--img-norm")!);
        Assert.False(choice.Auto);
        Assert.Equal(mean0, choice.Value!.Mean[0]);
        Assert.Equal(std0, choice.Value.Std[0]);
    }

    [Fact]
    public void Img_norm_auto_is_one_token_and_goes_to_the_server_as_auto()
    {
        var parse = CliRunner.Parse("train", "src", "resnet18", "t", "--img-norm", "auto", "--untrain");
        AssertParses(parse);
        var choice = ImgNormChoice.Parse(parse.GetValue<string[]>("--img-norm")!);
        Assert.True(choice.Auto);
        Assert.Equal("auto", choice.ToRequestField());
        Assert.Equal("0.667 0.161", ImgNormChoice.Parse(["0.667", "0.161"]).ToRequestField());
        Assert.Equal("", ImgNormChoice.None.ToRequestField());
    }

    [Fact]
    public void Norm_takes_neustons_calc_img_norm_flags()
    {
        var parse = CliRunner.Parse("norm", "src", "--resize", "224", "--class-config", "c.csv", "col", "--class-min", "5", "--class-max", "50",
            "--estimator", "neuston", "--seed", "9");
        AssertParses(parse);
        Assert.Equal(224, parse.GetValue<int>("--resize"));
        Assert.Equal("neuston", parse.GetValue<string>("--estimator"));
        Assert.Equal(299, CliRunner.Parse("norm", "src").GetValue<int>("--resize"));
        Assert.Equal("exact", CliRunner.Parse("norm", "src").GetValue<string>("--estimator"));
    }

    [Theory]
    [InlineData("dataset", "upload", "folder", "--name", "ds1")]
    [InlineData("dataset", "list")]
    [InlineData("dataset", "show", "ds1")]
    [InlineData("dataset", "delete", "ds1")]
    [InlineData("bins", "extract", "in", "out", "--flat", "--no-stitch")]
    [InlineData("jobs", "list", "--state", "running", "--limit", "5")]
    [InlineData("jobs", "show", "j1")]
    [InlineData("jobs", "watch", "j1")]
    [InlineData("jobs", "cancel", "j1")]
    [InlineData("jobs", "artifacts", "j1", "--out", "dir", "--only", "epochs.csv", "loss_curves.png")]
    [InlineData("models", "list")]
    [InlineData("models", "show", "plankton@production")]
    [InlineData("models", "versions", "plankton", "--tag", "stage=qa", "--metric", "f1_weighted>=0.8", "--status", "ready")]
    [InlineData("models", "alias", "plankton", "production", "3")]
    [InlineData("models", "alias", "plankton", "production", "--delete")]
    [InlineData("models", "tag", "plankton", "owner", "whoi", "--version", "2")]
    [InlineData("models", "download", "plankton/3", "-o", "m.ifcbmodel")]
    [InlineData("models", "export", "m.ifcbmodel", "--format", "onnx", "-o", "model.onnx", "--static-batch", "8")]
    [InlineData("models", "register", "m.ifcbmodel", "--name", "plankton", "--idempotency-key", "ci:123", "--commit", "abc", "--tag", "k=v", "--metric", "f1_weighted=0.9", "--alias", "staging")]
    [InlineData("models", "delete", "plankton/3", "--force")]
    [InlineData("models", "history", "plankton")]
    [InlineData("weights", "import", "resnet18", "resnet18.pth", "--weights", "/w")]
    [InlineData("weights", "import", "resnet18", "resnet18.safetensors", "--blobs", "UseDevelopmentStorage=true")]
    [InlineData("status", "--server", "http://localhost:5000", "--json")]
    [InlineData("--json", "--server", "http://h:1", "--api-key", "k", "jobs", "list")]
    public void Every_verb_parses(params string[] args) => AssertParses(CliRunner.Parse(args));

    [Theory]
    [InlineData("train", "src", "resnet18")]                                       // missing TRAIN_ID
    [InlineData("train", "src", "resnet18", "t", "--flip", "z")]                   // not a neuston flip
    [InlineData("train", "src", "resnet18", "t", "--emax", "many")]                // not a number
    [InlineData("train", "src", "resnet18", "t", "--class-config", "only.csv")]   // CSV without COL
    [InlineData("train", "src", "resnet18", "t", "--optimizer", "rmsprop")]       // not an offered optimiser
    [InlineData("train", "src", "resnet18", "t", "--lr-schedule", "step")]        // not an offered schedule
    [InlineData("train", "src", "resnet18", "t", "--sampler", "smote")]
    [InlineData("train", "src", "resnet18", "t", "--lr", "fast")]                 // not a number
    [InlineData("norm", "src", "--estimator", "median")]
    [InlineData("jobs", "list", "--state", "sleeping")]
    [InlineData("models", "register", "m.ifcbmodel")]                             // --name is required
    [InlineData("dataset")]                                                        // a group needs a verb
    [InlineData("frobnicate")]
    public async Task Bad_flags_exit_2(params string[] args)
    {
        var result = await CliRunner.RunAsync(args);
        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains("error:", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_verbs_without_a_server_are_usage_errors()
    {
        var result = await CliRunner.RunAsync("jobs", "list");
        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains("--server", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_from_the_environment_is_used_and_an_unreachable_one_exits_5()
    {
        // Port 9 (discard) on loopback: nothing listens there.
        var environment = new Dictionary<string, string> { [GlobalOptions.ServerVariable] = "http://127.0.0.1:9" };
        var result = await CliRunner.RunAsync(environment, "jobs", "list");
        Assert.Equal(ExitCodes.Unavailable, result.ExitCode);
        Assert.Contains("error: the Training service at http://127.0.0.1:9 is unavailable (connection refused", result.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(StatusCode.OK, 0)]
    [InlineData(StatusCode.InvalidArgument, 2)]
    [InlineData(StatusCode.NotFound, 3)]
    [InlineData(StatusCode.Unauthenticated, 4)]
    [InlineData(StatusCode.PermissionDenied, 4)]
    [InlineData(StatusCode.Unavailable, 5)]
    [InlineData(StatusCode.DeadlineExceeded, 5)]
    [InlineData(StatusCode.FailedPrecondition, 1)]
    [InlineData(StatusCode.AlreadyExists, 1)]
    [InlineData(StatusCode.DataLoss, 1)]
    public void Grpc_status_codes_map_to_exit_codes(StatusCode code, int exit) => Assert.Equal(exit, ExitCodes.FromStatus(code));

    [Theory]
    [InlineData("plankton/x")]
    [InlineData("plankton@")]
    [InlineData("plankton/0")]
    public void Bad_model_references_exit_with_the_usage_code(string text) =>
        Assert.Equal(ExitCodes.Usage, ExitCodes.FromException(Assert.Throws<FormatException>(() => ModelRef.Parse(text))));

    [Theory]
    [InlineData("f1_weighted>=0.8", "f1_weighted", ">=", 0.8)]
    [InlineData("val_loss < 1.5", "val_loss", "<", 1.5)]
    [InlineData("accuracy==1", "accuracy", "==", 1.0)]
    public void Metric_conditions(string text, string metric, string op, double value)
    {
        var threshold = ModelArguments.ParseThreshold(text);
        Assert.Equal((metric, op, value), (threshold.Metric, threshold.Op, threshold.Value));
    }

    [Theory]
    [InlineData("/data/training-sample", "training-sample")]
    [InlineData("/data/My Plankton (2024)/", "My-Plankton--2024-")]
    [InlineData("/data/..hidden", "hidden")]
    public void Dataset_names_from_folders_are_valid(string folder, string expected) => Assert.Equal(expected, DatasetNames.FromFolder(folder));
}
