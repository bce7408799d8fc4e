using System.Text.Json;
using Ifcb.Testing;

namespace Ifcb.Cli.Tests;

/// <summary><c>ifcb run --engine auto|onnx|torch</c> in local mode, and what auto picks.</summary>
public sealed class RunEngineOptionTests : IDisposable
{
    private static readonly string WhiteBin = Path.Combine(RepoPaths.Root, "testdata", "bins", "white");
    private readonly string _temp = Directory.CreateTempSubdirectory("ifcb-cli-engine-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    [Fact]
    public async Task The_onnx_engine_writes_the_scores_the_torch_engine_writes()
    {
        var checkpoint = SmallCheckpoint.Write(_temp, out var model);
        model.Dispose();
        var scores = new Dictionary<string, double[][]>();
        foreach (var engine in new[] { "torch", "onnx" })
        {
            var outdir = Path.Combine(_temp, engine);
            var result = await CliRunner.RunAsync("run", WhiteBin, checkpoint, "r1", "--engine", engine, "--outdir", outdir,
                "--outfile", "{BIN_ID}.json", "--batch", "8", "--json");
            Assert.True(result.ExitCode == 0, result.Error);
            Assert.Equal(1, JsonDocument.Parse(result.Output).RootElement.GetProperty("completed").GetInt32());
            var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(outdir, "D20130526T095207_IFCB013.json"))).RootElement;
            scores[engine] = [.. document.GetProperty("output_scores").EnumerateArray()
                .Select(row => row.EnumerateArray().Select(v => v.GetDouble()).ToArray())];
        }
        Assert.Equal(19, scores["torch"].Length);
        var pairs = scores["torch"].Zip(scores["onnx"]).SelectMany(rows => rows.First.Zip(rows.Second)).ToList();
        Assert.All(pairs, pair => Assert.True(Math.Abs(pair.First - pair.Second) <= 1e-4, $"{pair.First} vs {pair.Second}"));
        Assert.True(pairs.Max(p => p.First) - pairs.Min(p => p.First) > 0.01, "uniform scores would make the comparison say little");
    }

    [Fact]
    public void Auto_means_onnx_on_the_cpu_and_torch_on_a_gpu_and_names_are_checked()
    {
        // The meta device stands in for a GPU: constructing a CUDA device fails on a machine without one.
        Assert.Equal(Ifcb.Inference.InferenceEngine.Onnx, Ifcb.Inference.InferenceEngines.Resolve("auto", TorchSharp.torch.CPU));
        Assert.Equal(Ifcb.Inference.InferenceEngine.Onnx, Ifcb.Inference.InferenceEngines.Resolve("", TorchSharp.torch.CPU));
        Assert.Equal(Ifcb.Inference.InferenceEngine.Torch, Ifcb.Inference.InferenceEngines.Resolve("auto", TorchSharp.torch.META));
        Assert.Equal(Ifcb.Inference.InferenceEngine.Torch, Ifcb.Inference.InferenceEngines.Resolve("torch", TorchSharp.torch.CPU));
        Assert.Equal(Ifcb.Inference.InferenceEngine.Onnx, Ifcb.Inference.InferenceEngines.Resolve("onnx", TorchSharp.torch.CPU));
        var unknown = Assert.Throws<Ifcb.Platform.IfcbException>(() => Ifcb.Inference.InferenceEngines.Resolve("ONNX", TorchSharp.torch.CPU));
        Assert.Equal(Ifcb.Platform.ErrorKind.InvalidArgument, unknown.Kind);
        Assert.Contains("use auto, torch, onnx", unknown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_engine_is_a_usage_error()
    {
        var result = await CliRunner.RunAsync("run", WhiteBin, "model.ifcbmodel", "r1", "--engine", "tensorrt");
        Assert.Equal(ExitCodes.Usage, result.ExitCode);
    }
}
