using System.Text.Json;
using Ifcb.Data.Datasets;
using Ifcb.NormStats.Engine;
using Ifcb.Testing;

namespace Ifcb.Cli.Tests;

/// <summary>Local mode: the engines run in-process, like neuston_net on a laptop.</summary>
public sealed class LocalModeTests : IDisposable
{
    private static readonly string Sample = Path.Combine(RepoPaths.Root, "testdata", "training-sample");
    private readonly string _temp = Directory.CreateTempSubdirectory("ifcb-cli-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    [Fact]
    public async Task Norm_prints_mean_std_and_the_img_norm_string()
    {
        var result = await CliRunner.RunAsync("norm", Sample, "--resize", "64");

        Assert.Equal(0, result.ExitCode);
        var expected = new NormStatsCalculator(64).ComputeExact(DatasetSpec.FromFolder(Sample).Images);
        Assert.Contains($"--img-norm {expected.ImgNorm.ToString()}", result.Output, StringComparison.Ordinal);
        Assert.Matches(@"MEAN=\[0\.\d+ 0\.\d+ 0\.\d+\] STD=\[0\.\d+ 0\.\d+ 0\.\d+\]", result.Output);
    }

    [Fact]
    public async Task Norm_json_is_machine_readable_and_the_neuston_estimator_is_selectable()
    {
        var result = await CliRunner.RunAsync("norm", Sample, "--resize", "32", "--estimator", "neuston", "--json");

        Assert.Equal(0, result.ExitCode);
        using var json = JsonDocument.Parse(result.Output);
        Assert.Equal("neuston", json.RootElement.GetProperty("estimator").GetString());
        Assert.Equal(30, json.RootElement.GetProperty("images").GetInt64());
        Assert.Equal(3, json.RootElement.GetProperty("mean").GetArrayLength());
        var imgNorm = json.RootElement.GetProperty("img_norm").GetString()!;
        Assert.Equal(2, imgNorm.Split(' ').Length);
    }

    [Fact]
    public async Task Norm_of_a_missing_folder_exits_3()
    {
        var result = await CliRunner.RunAsync("norm", Path.Combine(_temp, "nope"));
        Assert.Equal(ExitCodes.NotFound, result.ExitCode);
        Assert.Contains("does not exist", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_dataset_config_from_make_config_is_a_SRC_for_norm_and_train()
    {
        // A second dataset: three of the Mesodinium images again under other names, plus a class the config will skip.
        var extra = Path.Combine(_temp, "extra");
        var meso = Directory.GetFiles(Path.Combine(Sample, "Mesodinium_major")).Order(StringComparer.Ordinal).ToList();
        Directory.CreateDirectory(Path.Combine(extra, "Mesodinium_major"));
        Directory.CreateDirectory(Path.Combine(extra, "junk"));
        for (var i = 0; i < 3; i++)
        {
            File.Copy(meso[i], Path.Combine(extra, "Mesodinium_major", $"again_{i}.png"));
            File.Copy(meso[i], Path.Combine(extra, "junk", $"junk_{i}.png"));
        }
        var config = Path.Combine(_temp, "config.csv");
        var made = await CliRunner.RunAsync("dataset", "make-config", Sample, extra, "-o", config);
        Assert.True(made.ExitCode == 0, made.Error);
        Assert.Equal($",1:{Sample},2:{extra}\nMesodinium_major,1,1\nStrombidium-like,1,0\njunk,0,1\n", File.ReadAllText(config));
        File.WriteAllText(config, File.ReadAllText(config).Replace("junk,0,1", "junk,0,0", StringComparison.Ordinal));

        var norm = await CliRunner.RunAsync("norm", config, "--resize", "32", "--json");
        Assert.True(norm.ExitCode == 0, norm.Error);
        using (var json = JsonDocument.Parse(norm.Output))
            Assert.Equal(33, json.RootElement.GetProperty("images").GetInt64());

        var outdir = Path.Combine(_temp, "merged");
        var train = await CliRunner.RunAsync("train", config, "resnet18", "merged", "--untrain", "--resize", "32", "--batch", "8", "--emax", "1",
            "--emin", "1", "--seed", "3", "--outdir", outdir);
        Assert.True(train.ExitCode == 0, train.Error);
        var images = File.ReadAllText(Path.Combine(outdir, "training_images.list")).Split('\n')
            .Concat(File.ReadAllText(Path.Combine(outdir, "validation_images.list")).Split('\n')).ToList();
        Assert.Equal(33, images.Count); // 17 + 16: the extra Mesodinium images joined, junk stayed out
        Assert.Equal(3, images.Count(p => p.StartsWith(extra, StringComparison.Ordinal)));

        // A broken config is a usage error that names the problem.
        File.WriteAllText(config, $",{Sample}\nMesodinium_major,\n");
        var broken = await CliRunner.RunAsync("norm", config);
        Assert.NotEqual(0, broken.ExitCode);
        Assert.Contains("blank", broken.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_ifcb_binary_restarts_itself_with_the_malloc_environment_before_training()
    {
        var configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        var binary = Path.Combine(RepoPaths.Root, "tools", "Ifcb.Cli", "bin", configuration, "net10.0", "linux-x64", "ifcb.dll");
        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { binary, "train", Sample, "resnet18", "m", "--untrain", "--resize", "16", "--batch", "8", "--emax", "1",
                     "--emin", "1", "--outdir", Path.Combine(_temp, "m"), "--json" })
            start.ArgumentList.Add(arg);
        foreach (var name in Ifcb.Models.NativeAllocator.EnvironmentVariables.Keys.Append("IFCB_MALLOC_RESTART"))
            start.Environment.Remove(name);
        using var process = System.Diagnostics.Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, error);
        using var json = JsonDocument.Parse(await output);
        Assert.Equal("environment", json.RootElement.GetProperty("malloc").GetString());
        Assert.Equal("succeeded", json.RootElement.GetProperty("state").GetString());
    }

    [Theory]
    [InlineData("--split", "70:20")]          // engine rejects: must sum to 100
    [InlineData("--img-norm", "abc")]          // not MEAN STD
    [InlineData("--emin", "5")]                // emin > emax (2)
    public async Task Train_with_invalid_values_exits_2_before_training(string flag, string value)
    {
        var result = await CliRunner.RunAsync("train", Sample, "resnet18", "bad", "--untrain", "--emax", "2", flag, value,
            "--outdir", Path.Combine(_temp, "bad"));
        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.False(Directory.Exists(Path.Combine(_temp, "bad")));
    }

    [Fact]
    public async Task Train_of_an_unknown_model_exits_2()
    {
        var result = await CliRunner.RunAsync("train", Sample, "resnet9000", "bad", "--untrain", "--outdir", Path.Combine(_temp, "bad"));
        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains("Unknown model", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Train_without_imported_weights_says_how_to_import_them()
    {
        var result = await CliRunner.RunAsync("train", Sample, "resnet18", "pre", "--weights", Path.Combine(_temp, "weights"), "--emax", "1", "--emin", "1",
            "--outdir", Path.Combine(_temp, "pre"));
        Assert.Equal(ExitCodes.Failed, result.ExitCode);
        Assert.Contains("ifcb weights import resnet18", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Train_writes_neuston_style_outputs_and_the_metrics_table()
    {
        var outdir = Path.Combine(_temp, "t1");
        var result = await CliRunner.RunAsync("train", Sample, "resnet18", "t1", "--untrain", "--resize", "32", "--batch", "8", "--emax", "2", "--emin", "1",
            "--seed", "5", "--outdir", outdir);

        Assert.True(result.ExitCode == 0, result.Error);
        foreach (var file in new[] { "epochs.csv", "args.json", "results.json", "training_images.list", "validation_images.list", "t1.ifcbmodel",
                     "loss_curves.png", "f1_curves.png", "confusion_matrix.png" })
            Assert.True(File.Exists(Path.Combine(outdir, file)), $"{file} missing; have {string.Join(", ", Directory.GetFiles(outdir).Select(Path.GetFileName))}");
        Assert.False(Directory.Exists(Path.Combine(outdir, "resume")));
        var epochs = File.ReadAllLines(Path.Combine(outdir, "epochs.csv"));
        Assert.StartsWith("epoch,best,train_loss,val_loss,f1_macro,f1_weighted", epochs[0], StringComparison.Ordinal);
        Assert.Equal(3, epochs.Length);
        Assert.Equal(24, File.ReadAllText(Path.Combine(outdir, "training_images.list")).Split('\n').Length);
        Assert.Equal(6, File.ReadAllText(Path.Combine(outdir, "validation_images.list")).Split('\n').Length);
        using (var args = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(outdir, "args.json"))))
        {
            Assert.Equal(5, args.RootElement.GetProperty("seed").GetInt64());
            Assert.Equal(32, args.RootElement.GetProperty("resize").GetInt32());
        }
        // The final metrics table and the summary.
        Assert.Contains("f1_weighted", result.Output, StringComparison.Ordinal);
        Assert.Contains("Best epoch", result.Output, StringComparison.Ordinal);
        Assert.Contains(outdir, result.Output, StringComparison.Ordinal);

        // neuston RUN with the model just trained: the white bin's 19 ROIs, and the 30 sample images.
        var white = Path.Combine(Ifcb.Testing.RepoPaths.Root, "testdata", "bins", "white");
        var runDir = Path.Combine(_temp, "run");
        var run = await CliRunner.RunAsync("run", white, Path.Combine(outdir, "t1.ifcbmodel"), "r1", "--outdir", runDir,
            "--outfile", "{BIN_ID}.json", "--outfile", "D{BIN_YEAR}/D{BIN_DATE}/{BIN_ID}_class.h5", "--json");
        Assert.True(run.ExitCode == 0, run.Error);
        using (var bin = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(runDir, "D20130526T095207_IFCB013.json"))))
        {
            Assert.Equal(19, bin.RootElement.GetProperty("roi_numbers").GetArrayLength());
            Assert.Equal(19, bin.RootElement.GetProperty("output_scores").GetArrayLength());
            Assert.Equal("t1", bin.RootElement.GetProperty("model_id").GetString());
        }
        Assert.True(File.Exists(Path.Combine(runDir, "D2013", "D20130526", "D20130526T095207_IFCB013_class.h5")));

        var images = await CliRunner.RunAsync("run", Sample, Path.Combine(outdir, "t1.ifcbmodel"), "r2", "--type", "img", "--outdir", runDir, "--json");
        Assert.True(images.ExitCode == 0, images.Error);
        using (var results = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(runDir, "img_results.json"))))
            Assert.Equal(30, results.RootElement.GetProperty("input_images").GetArrayLength());

        var again = await CliRunner.RunAsync("run", white, Path.Combine(outdir, "t1.ifcbmodel"), "r1", "--outdir", runDir,
            "--outfile", "{BIN_ID}.json", "--json");
        Assert.Equal(0, again.ExitCode);
        using (var report = JsonDocument.Parse(again.Output))
        {
            Assert.Equal(1, report.RootElement.GetProperty("skipped_existing").GetInt32());
            Assert.Equal(0, report.RootElement.GetProperty("completed").GetInt32());
        }
    }

    [Fact]
    public async Task Bins_extract_writes_every_roi_and_reports_skipped_bins()
    {
        var output = Path.Combine(_temp, "pngs");
        var white = await CliRunner.RunAsync("bins", "extract", Path.Combine(RepoPaths.Root, "testdata", "bins", "white"), output, "--json");

        Assert.Equal(0, white.ExitCode);
        Assert.Equal(19, Directory.GetFiles(output, "*.png", SearchOption.AllDirectories).Length);
        Assert.All(Directory.GetFiles(output, "*.png", SearchOption.AllDirectories),
            png => Assert.StartsWith("D20130526T095207_IFCB013_", Path.GetFileName(png), StringComparison.Ordinal));
        using var json = JsonDocument.Parse(white.Output);
        Assert.Equal(19, json.RootElement.GetProperty("images").GetInt32());

        var broken = await CliRunner.RunAsync("bins", "extract", Path.Combine(RepoPaths.Root, "testdata", "bins", "partial"), Path.Combine(_temp, "none"));
        Assert.Equal(0, broken.ExitCode);
        Assert.Contains("missing .roi", broken.Error, StringComparison.Ordinal);
    }
}
