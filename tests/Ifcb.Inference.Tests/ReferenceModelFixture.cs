using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ifcb.Contracts;
using Ifcb.Data.Bins;
using Ifcb.Models.Checkpoints;
using Ifcb.Testing;

namespace Ifcb.Inference.Tests;

/// <summary>
/// One torchvision resnet18 (2 classes, seeded, BatchNorm calibrated on the sample images) built by Debian's PyTorch,
/// imported here twice (without and with an img_norm), plus torchvision's scores for the sample PNGs, the white bin's
/// ROIs (exported as lossless PNGs) and 224x224 copies of the samples. One Python run for the whole test assembly.
/// </summary>
public sealed class ReferenceModelFixture : IDisposable
{
    public const string Python = "/usr/bin/python3";
    public static readonly ImgNorm Norm = ImgNorm.Parse("0.5", "0.25");
    public static readonly string[] Classes = ["class_0", "class_1"];

    public ReferenceModelFixture()
    {
        Directory.CreateDirectory(Root);
        SampleImages = [.. Directory.EnumerateFiles(SampleFolder, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal)];
        RoiFolder = Path.Combine(Root, "rois");
        RoiImages = RoiExporter.ExportPngs(RawBin.Open(WhiteBin), RoiFolder);
        var spec = new JsonObject
        {
            ["outdir"] = Root,
            ["arch"] = "resnet18",
            ["num_classes"] = Classes.Length,
            ["seed"] = 1234,
            ["size"] = 224,
            ["calibration_images"] = Array(SampleImages),
            ["lossless_sources"] = Array(SampleImages.Where((_, i) => i % 3 == 0)),
            ["classify"] = new JsonObject
            {
                ["samples"] = Job(Array(SampleImages), null),
                ["samples_norm"] = Job(Array(SampleImages), Norm),
                ["rois"] = Job(Array(RoiImages), null),
                ["lossless"] = Job("lossless", null),
                ["lossless_norm"] = Job("lossless", Norm),
            },
        };
        var specPath = Path.Combine(Root, "spec.json");
        File.WriteAllText(specPath, spec.ToJsonString());
        RunPython("prepare", specPath);
        var reference = JsonNode.Parse(File.ReadAllText(Path.Combine(Root, "reference.json")))!.AsObject();
        LosslessFolder = Path.Combine(Root, "lossless");
        foreach (var (name, scores) in reference)
        {
            if (name != "lossless_images")
                Reference[name] = scores!.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value!.AsArray().Select(v => v!.GetValue<double>()).ToArray());
        }
        StateDictPath = Path.Combine(Root, "model.pth");
        NeustonCheckpointPath = Path.Combine(Root, "model.ptl");
        Plain = ModelImport.FromStateDict(StateDictPath, new StateDictImportSpec("resnet18", Classes) { ModelId = "parity-plain" });
        Normalised = ModelImport.FromStateDict(StateDictPath, new StateDictImportSpec("resnet18", Classes) { ModelId = "parity-norm", ImgNorm = Norm });
    }

    public static string SampleFolder => Path.Combine(RepoPaths.Root, "testdata", "training-sample");
    public static string BinsFolder => Path.Combine(RepoPaths.Root, "testdata", "bins");
    public static string WhiteBin => Path.Combine(BinsFolder, "white", "D2013", "D201305", "D20130526", "D20130526T095207_IFCB013");

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "ifcb-inference-" + Guid.NewGuid().ToString("N"));
    public IReadOnlyList<string> SampleImages { get; }
    public string RoiFolder { get; }
    public IReadOnlyList<string> RoiImages { get; }
    public string LosslessFolder { get; }
    public string StateDictPath { get; }
    public string NeustonCheckpointPath { get; }

    /// <summary>torchvision's softmax scores per image path, by job name (samples, samples_norm, rois, lossless, lossless_norm).</summary>
    public Dictionary<string, Dictionary<string, double[]>> Reference { get; } = [];

    public LoadedCheckpoint Plain { get; }
    public LoadedCheckpoint Normalised { get; }

    /// <summary>A fresh folder below the fixture's root, for one test's outputs.</summary>
    public string NewFolder()
    {
        var path = Path.Combine(Root, "t-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(path);
        return path;
    }

    public static string RunPython(params string[] arguments)
    {
        var start = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "python", "run_reference.py"));
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {Python}");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{Python} run_reference.py {string.Join(' ', arguments)} failed ({process.ExitCode}):\n{stderr.Result}\n{stdout}");
        return stdout;
    }

    public void Dispose()
    {
        Plain.Model.Dispose();
        Normalised.Model.Dispose();
        if (Directory.Exists(Root))
            Directory.Delete(Root, recursive: true);
    }

    private static JsonArray Array(IEnumerable<string> items) => new([.. items.Select(i => (JsonNode)JsonValue.Create(i))]);

    private static JsonObject Job(JsonNode images, ImgNorm? norm) => new()
    {
        ["images"] = images,
        ["norm"] = norm is null ? null : new JsonArray(norm.ToNeustonStrings().Mean, norm.ToNeustonStrings().Std),
    };

    private static JsonObject Job(string images, ImgNorm? norm) => Job(JsonValue.Create(images), norm);
}

[CollectionDefinition(Name)]
public sealed class ReferenceModelCollection : ICollectionFixture<ReferenceModelFixture>
{
    public const string Name = "reference model";
}

/// <summary>Reads a JSON result file back as (row id → scores), with the row's winning class.</summary>
public static class JsonResults
{
    public static (Dictionary<string, float[]> Scores, Dictionary<string, int> Classes, JsonObject Document) Read(string path, bool images)
    {
        var document = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        var scores = document["output_scores"]!.AsArray().Select(r => r!.AsArray().Select(v => v!.GetValue<float>()).ToArray()).ToList();
        var classes = document["output_classes"]!.AsArray().Select(v => v!.GetValue<int>()).ToList();
        var ids = images
            ? document["input_images"]!.AsArray().Select(v => v!.GetValue<string>()).ToList()
            : document["roi_numbers"]!.AsArray().Select(v => $"{document["bin_id"]!.GetValue<string>()}_{v!.GetValue<int>():00000}").ToList();
        return (ids.Zip(scores).ToDictionary(p => p.First, p => p.Second), ids.Zip(classes).ToDictionary(p => p.First, p => p.Second), document);
    }

    public static JsonElement Parse(string json) => JsonDocument.Parse(json).RootElement;
}
