using System.Diagnostics;
using System.Text.Json;
using Ifcb.Models.Checkpoints;
using Ifcb.Testing;
using static TorchSharp.torch;

namespace Ifcb.Cli.Tests;

/// <summary>
/// <c>ifcb evaluate</c> and <c>ifcb models compare</c> in local mode on the real IFCB sample: the figures equal
/// scikit-learn's (Debian's python3-sklearn) on the labels RUN assigns to the same images, and the comparison's exit
/// code gates on the chosen metric.
/// </summary>
public sealed class EvaluateCommandTests : IDisposable
{
    private static readonly string Sample = Path.Combine(RepoPaths.Root, "testdata", "training-sample");
    private readonly string _temp = Directory.CreateTempSubdirectory("ifcb-cli-evaluate-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    [Fact]
    public async Task Evaluate_reports_what_scikit_learn_computes_from_the_labels_run_assigns()
    {
        var checkpoint = SmallCheckpoint.Write(_temp, out var model);
        model.Dispose();
        var outdir = Path.Combine(_temp, "evaluation");
        var evaluated = await CliRunner.RunAsync("evaluate", checkpoint, Sample, "--outdir", outdir, "--engine", "torch", "--batch", "7", "--json");
        Assert.True(evaluated.ExitCode == 0, evaluated.Error);
        var report = JsonDocument.Parse(evaluated.Output).RootElement;
        Assert.Equal(30, report.GetProperty("images").GetInt32());
        foreach (var file in new[] { "evaluation.json", "evaluation_per_class.csv", "confusion_matrix.png" })
            Assert.True(File.Exists(Path.Combine(outdir, file)), file);

        // RUN on the same images, then scikit-learn on (folder label, RUN's class).
        var run = await CliRunner.RunAsync("run", Sample, checkpoint, "same", "--type", "img", "--engine", "torch",
            "--outdir", Path.Combine(_temp, "run"), "--outfile", "img_results.json", "--json");
        Assert.True(run.ExitCode == 0, run.Error);
        var results = JsonDocument.Parse(File.ReadAllText(Path.Combine(_temp, "run", "img_results.json"))).RootElement;
        var predicted = results.GetProperty("output_classes").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var truth = results.GetProperty("input_images").EnumerateArray()
            .Select(e => SmallCheckpoint.Classes.ToList().IndexOf(Path.GetFileName(Path.GetDirectoryName(e.GetString()))!)).ToArray();
        Assert.DoesNotContain(-1, truth);
        var script = $"""
            import json
            from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
            t, p = {JsonSerializer.Serialize(truth)}, {JsonSerializer.Serialize(predicted)}
            labels = [0, 1, 2]
            print(json.dumps({"{"}"accuracy": accuracy_score(t, p),
                "f1_weighted": f1_score(t, p, labels=labels, average="weighted", zero_division=0),
                "f1_macro": f1_score(t, p, labels=labels, average="macro", zero_division=0),
                "f1": list(f1_score(t, p, labels=labels, average=None, zero_division=0)),
                "cm": confusion_matrix(t, p, labels=labels).tolist(){"}"}))
            """;
        var sklearn = JsonDocument.Parse(Python(script)).RootElement;
        foreach (var metric in new[] { "accuracy", "f1_weighted", "f1_macro" })
            Assert.Equal(sklearn.GetProperty(metric).GetDouble(), report.GetProperty(metric).GetDouble(), 12);
        Assert.Equal(sklearn.GetProperty("f1").EnumerateArray().Select(e => Math.Round(e.GetDouble(), 12)),
            report.GetProperty("per_class").EnumerateArray().Select(e => Math.Round(e.GetProperty("f1").GetDouble(), 12)));
        Assert.Equal(sklearn.GetProperty("cm").GetRawText().Replace(" ", "", StringComparison.Ordinal),
            report.GetProperty("confusion_matrix").GetRawText().Replace(" ", "", StringComparison.Ordinal)
                .Replace("\n", "", StringComparison.Ordinal).Replace("\r", "", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Compare_exits_non_zero_unless_the_candidate_is_strictly_better()
    {
        // Two models whose winners do not depend on the images: one always says "detritus, small" (absent from the sample,
        // f1_weighted 0), one always says Mesodinium_major (14 of the 30 images: f1 2·14/(14+30) for it, 0 for
        // Strombidium-like, so f1_weighted 14/30 · 28/44).
        var detritus = Biased(2, "always-detritus");
        var mesodinium = Biased(0, "always-mesodinium");

        var better = await CliRunner.RunAsync("models", "compare", detritus, mesodinium, "--dataset", Sample, "--require-better", "f1_weighted",
            "--engine", "onnx", "--json");
        Assert.True(better.ExitCode == 0, better.Error);
        var comparison = JsonDocument.Parse(better.Output).RootElement;
        Assert.True(comparison.GetProperty("candidate_is_better").GetBoolean());
        Assert.Equal(0.0, comparison.GetProperty("base").GetProperty("f1_weighted").GetDouble());
        Assert.Equal(14.0 / 30 * 28 / 44, comparison.GetProperty("candidate").GetProperty("f1_weighted").GetDouble(), 12);

        var worse = await CliRunner.RunAsync("models", "compare", mesodinium, detritus, "--dataset", Sample, "--require-better", "f1_weighted");
        Assert.Equal(ExitCodes.Failed, worse.ExitCode);
        Assert.Contains("is not better than", worse.Output, StringComparison.Ordinal);
        var tie = await CliRunner.RunAsync("models", "compare", mesodinium, mesodinium, "--dataset", Sample, "--require-better", "accuracy");
        Assert.Equal(ExitCodes.Failed, tie.ExitCode);
        var informational = await CliRunner.RunAsync("models", "compare", mesodinium, detritus, "--dataset", Sample);
        Assert.Equal(ExitCodes.Success, informational.ExitCode);
        Assert.Contains("Strombidium-like", informational.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_dataset_without_any_class_of_the_model_is_refused_and_unknown_classes_are_reported()
    {
        var checkpoint = SmallCheckpoint.Write(_temp, out var model);
        model.Dispose();
        var foreign = Path.Combine(_temp, "foreign", "Dinophysis");
        Directory.CreateDirectory(foreign);
        File.Copy(Directory.EnumerateFiles(Path.Combine(Sample, "Mesodinium_major")).First(), Path.Combine(foreign, "a.png"));
        var refused = await CliRunner.RunAsync("evaluate", checkpoint, Path.Combine(_temp, "foreign"));
        Assert.Equal(ExitCodes.Usage, refused.ExitCode);
        Assert.Contains("No image in", refused.Error, StringComparison.Ordinal);
        Assert.Contains("Dinophysis", refused.Error, StringComparison.Ordinal);

        // A known class next to an unknown one: the unknown one's images are counted and left out.
        var mixed = Path.Combine(_temp, "mixed");
        Directory.CreateDirectory(Path.Combine(mixed, "Mesodinium_major"));
        File.Copy(Path.Combine(foreign, "a.png"), Path.Combine(mixed, "Mesodinium_major", "a.png"));
        Directory.Move(foreign, Path.Combine(mixed, "Dinophysis"));
        var partly = await CliRunner.RunAsync("evaluate", checkpoint, mixed, "--outdir", Path.Combine(_temp, "out"), "--json");
        Assert.True(partly.ExitCode == 0, partly.Error);
        var report = JsonDocument.Parse(partly.Output).RootElement;
        Assert.Equal(1, report.GetProperty("images").GetInt32());
        Assert.Equal(1, report.GetProperty("skipped_classes").GetProperty("Dinophysis").GetInt32());
    }

    [Fact]
    public async Task Thresholded_figures_equal_scikit_learns_with_unclassified_images_as_misses()
    {
        var path = SmallCheckpoint.Write(_temp, out var model);
        model.Dispose();
        // The scores do not depend on the thresholds: RUN first, then thresholds at the median winning score.
        var run = await CliRunner.RunAsync("run", Sample, path, "same", "--type", "img", "--engine", "torch",
            "--outdir", Path.Combine(_temp, "run"), "--outfile", "img_results.json", "--json");
        Assert.True(run.ExitCode == 0, run.Error);
        var results = JsonDocument.Parse(File.ReadAllText(Path.Combine(_temp, "run", "img_results.json"))).RootElement;
        var scores = results.GetProperty("output_scores").EnumerateArray()
            .Select(row => row.EnumerateArray().Select(e => e.GetDouble()).ToArray()).ToArray();
        var truth = results.GetProperty("input_images").EnumerateArray()
            .Select(e => SmallCheckpoint.Classes.ToList().IndexOf(Path.GetFileName(Path.GetDirectoryName(e.GetString()))!)).ToArray();
        // Halfway between two winning scores, so no score sits on the threshold (float32 scores read back as doubles).
        var winners = scores.Select(row => row.Max()).Order().ToArray();
        var median = (winners[scores.Length / 2 - 1] + winners[scores.Length / 2]) / 2;
        double?[] thresholds = [median, median, null];

        LoadedCheckpoint written;
        using (var file = File.OpenRead(path))
            written = Checkpoint.Load(file);
        using (written.Model)
        {
            using var file = File.Create(path);
            Checkpoint.Save(file, written.Hparams with { ClassThresholds = thresholds }, written.Model);
        }
        var evaluated = await CliRunner.RunAsync("evaluate", path, Sample, "--outdir", Path.Combine(_temp, "thresholded"), "--engine", "torch",
            "--json");
        Assert.True(evaluated.ExitCode == 0, evaluated.Error);
        var report = JsonDocument.Parse(evaluated.Output).RootElement.GetProperty("thresholded");

        var script = $$"""
            import json
            from sklearn.metrics import accuracy_score, f1_score
            scores, t, thresholds = {{JsonSerializer.Serialize(scores)}}, {{JsonSerializer.Serialize(truth)}}, {{JsonSerializer.Serialize(thresholds)}}
            p = []
            for row in scores:
                w = max(range(len(row)), key=lambda c: (row[c], -c))
                p.append(-1 if thresholds[w] is not None and row[w] < thresholds[w] else w)
            labels = [0, 1, 2]
            print(json.dumps({"unclassified": p.count(-1), "accuracy": accuracy_score(t, p),
                "f1_weighted": f1_score(t, p, labels=labels, average="weighted", zero_division=0),
                "f1_macro": f1_score(t, p, labels=labels, average="macro", zero_division=0)}))
            """.Replace("null", "None", StringComparison.Ordinal);
        var sklearn = JsonDocument.Parse(Python(script)).RootElement;
        Assert.Equal(sklearn.GetProperty("unclassified").GetInt32(), report.GetProperty("unclassified").GetInt32());
        Assert.InRange(report.GetProperty("unclassified").GetInt32(), 1, 29);
        foreach (var metric in new[] { "accuracy", "f1_weighted", "f1_macro" })
            Assert.Equal(sklearn.GetProperty(metric).GetDouble(), report.GetProperty(metric).GetDouble(), 12);
    }

    /// <summary>The small checkpoint with the last layer's bias pushing every image to class <paramref name="winner"/>.</summary>
    private string Biased(int winner, string name)
    {
        var folder = Directory.CreateDirectory(Path.Combine(_temp, name)).FullName;
        var path = SmallCheckpoint.Write(folder, out var model);
        using (model)
        {
            using (no_grad())
            {
                var bias = model.named_parameters().Single(p => p.name == "classifier.1.bias").parameter;
                var values = new float[SmallCheckpoint.Classes.Count];
                values[winner] = 1000;
                bias.copy_(tensor(values));
            }
            LoadedCheckpoint written;
            using (var file = File.OpenRead(path))
                written = Checkpoint.Load(file);
            written.Model.Dispose();
            using (var file = File.Create(path))
                Checkpoint.Save(file, written.Hparams, model);
        }
        return path;
    }

    private static string Python(string script)
    {
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        process.StandardInput.Write(script);
        process.StandardInput.Close();
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, stderr.Result);
        return stdout;
    }
}
