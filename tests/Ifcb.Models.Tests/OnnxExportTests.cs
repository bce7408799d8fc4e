using System.Diagnostics;
using System.Text.Json;
using Ifcb.Contracts;
using Ifcb.Data;
using Ifcb.Models.Checkpoints;
using Ifcb.Models.Onnx;
using Microsoft.ML.OnnxRuntime;
using Xunit.Abstractions;
using static TorchSharp.torch;
using DenseTensor = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>;
using Tensor = TorchSharp.torch.Tensor;

namespace Ifcb.Models.Tests;

/// <summary>
/// Every zoo architecture exported to ONNX and run by ONNX Runtime: its probabilities on real IFCB ROIs in [0,1] equal
/// our TorchSharp model's softmax on the same ROIs normalised outside the graph, for batch 3 and batch 1, and the
/// official ONNX checker accepts the file. Small inputs where the architecture allows, untrained weights made to behave
/// like trained ones (<see cref="TrainLikeWeights"/>), a per-channel img-norm that is far from the identity.
/// </summary>
[Collection(OnnxCollection.Name)]
public sealed class OnnxExportTests(OnnxChecker checker, ITestOutputHelper output) : IDisposable
{
    public const double Tolerance = 1e-4;
    private const int Classes = 5;
    private static readonly ImgNorm Norm = ImgNorm.Parse("0.6,0.5,0.4", "0.2,0.25,0.3");
    private readonly TemporaryDirectory _directory = new();

    /// <summary>
    /// (zoo name, input side): the smallest sides the parity tests use, 75 for inception_v3; inception_v4 at 107, where its
    /// last maps are 2×2 rather than 1×1 (at 75 its float32 rounding alone moved probabilities by 1e-4).
    /// </summary>
    public static TheoryData<string, int> Architectures => new()
    {
        { "inception_v3", 75 }, { "alexnet", 64 }, { "squeezenet", 64 }, { "squeezenet1_0", 64 }, { "squeezenet1_1", 64 },
        { "vgg11", 32 }, { "vgg11_bn", 32 }, { "vgg13", 32 }, { "vgg13_bn", 32 },
        { "vgg16", 32 }, { "vgg16_bn", 32 }, { "vgg19", 32 }, { "vgg19_bn", 32 },
        { "resnet18", 64 }, { "resnet34", 64 }, { "resnet50", 64 }, { "resnet101", 64 }, { "resnet152", 64 },
        { "densenet121", 64 }, { "densenet161", 64 }, { "densenet169", 64 }, { "densenet201", 64 },
        { "inception_v4", 107 },
    };

    [Theory]
    [MemberData(nameof(Architectures))]
    public void Onnx_runtime_probabilities_equal_ours_and_the_checker_accepts_the_file(string architecture, int side) =>
        AssertParity(architecture, side, pretrainedLayout: false);

    [Fact]
    public void Inception_v3_transform_input_is_in_the_graph_when_pretrained() => AssertParity("inception_v3", 75, pretrainedLayout: true);

    [Fact]
    public void Metadata_and_the_input_shape_read_back_through_onnx_runtime()
    {
        using var model = ModelZoo.Create("squeezenet1_1", Classes, pretrainedLayout: false);
        var hparams = Hparams("squeezenet1_1", 64, Norm);
        var provenance = new RegistryProvenance("plankton", 7, new string('a', 64));
        var path = Export(model, hparams, new OnnxExportOptions { Registry = provenance });
        using var session = new InferenceSession(path);

        var metadata = session.ModelMetadata.CustomMetadataMap;
        Assert.Equal(hparams.Classes, JsonSerializer.Deserialize<string[]>(metadata[OnnxMetadataKeys.ClassLabels]));
        Assert.Equal("squeezenet1_1", metadata[OnnxMetadataKeys.Architecture]);
        Assert.Equal(Norm, ImgNorm.Parse(metadata[OnnxMetadataKeys.ImgNorm]));
        Assert.Equal("64", metadata[OnnxMetadataKeys.Resize]);
        Assert.Equal("model-squeezenet1_1", metadata[OnnxMetadataKeys.ModelId]);
        Assert.Equal("plankton", metadata[OnnxMetadataKeys.RegistryName]);
        Assert.Equal("7", metadata[OnnxMetadataKeys.RegistryVersion]);
        Assert.Equal(provenance.CheckpointSha256, metadata[OnnxMetadataKeys.CheckpointSha256]);
        Assert.Equal(7, session.ModelMetadata.Version);
        var proto = OnnxExport.Build(model, hparams, new OnnxExportOptions());
        Assert.Equal(OnnxExport.IrVersion, proto.IrVersion);
        Assert.Equal(OnnxExport.Opset, Assert.Single(proto.OpsetImport).Version);
        Assert.Equal("ifcb", session.ModelMetadata.ProducerName);

        var input = Assert.Single(session.InputMetadata);
        Assert.Equal(OnnxExport.InputName, input.Key);
        Assert.Equal(new[] { -1, 3, 64, 64 }, input.Value.Dimensions);
        Assert.Equal("batch", input.Value.SymbolicDimensions[0]);
        Assert.Equal(new[] { OnnxExport.ProbabilitiesName, OnnxExport.LogitsName }, session.OutputNames);
        Assert.Equal(new[] { -1, Classes }, session.OutputMetadata[OnnxExport.ProbabilitiesName].Dimensions);
    }

    [Fact]
    public void Without_img_norm_or_registry_those_keys_are_absent_and_the_graph_starts_at_the_network()
    {
        using var model = ModelZoo.Create("squeezenet1_1", Classes, pretrainedLayout: false);
        var path = Export(model, Hparams("squeezenet1_1", 64, null), new OnnxExportOptions());
        using var session = new InferenceSession(path);
        var metadata = session.ModelMetadata.CustomMetadataMap;
        Assert.False(metadata.ContainsKey(OnnxMetadataKeys.ImgNorm));
        Assert.False(metadata.ContainsKey(OnnxMetadataKeys.RegistryName));
        var graph = OnnxExport.Build(model, Hparams("squeezenet1_1", 64, null), new OnnxExportOptions()).Graph;
        Assert.Equal("Conv", graph.Node[0].OpType);
        Assert.Equal(OnnxExport.InputName, graph.Node[0].Input[0]);
    }

    [Fact]
    public void A_static_batch_is_declared_and_enforced()
    {
        using var scope = NewDisposeScope();
        using var model = ModelZoo.Create("resnet18", Classes, pretrainedLayout: false);
        model.eval();
        var path = Export(model, Hparams("resnet18", 32, Norm), new OnnxExportOptions { StaticBatch = 2 });
        using var session = new InferenceSession(path);
        Assert.Equal(new[] { 2, 3, 32, 32 }, session.InputMetadata[OnnxExport.InputName].Dimensions);
        Assert.Equal(new[] { 2, Classes }, session.OutputMetadata[OnnxExport.LogitsName].Dimensions);
        var input = rand(3, 3, 32, 32);
        Assert.Equal(new long[] { 2, Classes }, RunOnnx(session, input[..2])[0].shape);
        Assert.Throws<OnnxRuntimeException>(() => RunOnnx(session, input));
        Assert.True(checker.Check(path)["ok"]!.GetValue<bool>());
    }

    [Fact]
    public void The_checker_refuses_a_broken_graph()
    {
        // Proves the checker harness can fail: the same export with one weight removed has a dangling input.
        using var model = ModelZoo.Create("squeezenet1_1", Classes, pretrainedLayout: false);
        var proto = OnnxExport.Build(model, Hparams("squeezenet1_1", 64, null), new OnnxExportOptions());
        proto.Graph.Initializer.RemoveAt(0);
        var path = System.IO.Path.Combine(_directory.Path, "broken.onnx");
        using (var file = File.Create(path))
            Google.Protobuf.MessageExtensions.WriteTo(proto, file);
        var answer = checker.Check(path);
        Assert.False(answer["ok"]!.GetValue<bool>());
        Assert.Contains("features.0.weight", answer["error"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_resize_too_small_for_the_architecture_is_refused_before_writing()
    {
        using var model = ModelZoo.Create("inception_v3", Classes, pretrainedLayout: false);
        var error = Assert.Throws<ArgumentException>(() => OnnxExport.ToBytes(model, Hparams("inception_v3", 32, null)));
        Assert.Contains("too small", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Hparams_of_another_model_are_refused()
    {
        using var model = ModelZoo.Create("resnet18", Classes, pretrainedLayout: false);
        Assert.Throws<ArgumentException>(() => OnnxExport.ToBytes(model, Hparams("resnet34", 64, null)));
        Assert.Throws<ArgumentException>(() => OnnxExport.ToBytes(model, Hparams("resnet18", 64, null) with { Classes = ["a", "b"] }));
    }

    public void Dispose() => _directory.Dispose();

    private void AssertParity(string architecture, int side, bool pretrainedLayout)
    {
        var clock = Stopwatch.StartNew();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        using var scope = NewDisposeScope();
        manual_seed(20261201);
        using var model = ModelZoo.Create(architecture, Classes, pretrainedLayout);
        var rois = TrainLikeWeights.SampleRois(side);
        // Both classes of the sample (Mesodinium first, Strombidium-like from index 15); the others calibrate.
        var input = rois[TensorIndex.Tensor(tensor(new long[] { 1, 14, 28 }))];
        TrainLikeWeights.Apply(model, Norm.Apply(rois[TensorIndex.Slice(0, 30, 3)]));
        Tensor expectedLogits;
        using (no_grad())
            expectedLogits = model.Logits(Norm.Apply(input));
        var expected = expectedLogits.softmax(1);
        var created = clock.Elapsed;

        var path = Export(model, Hparams(architecture, side, Norm) with { Pretrained = pretrainedLayout }, new OnnxExportOptions());
        var exported = clock.Elapsed;
        var checking = checker.CheckAsync(path);
        Tensor[] batch3, batch1;
        using (var options = new SessionOptions())
        {
            // Prepacking only re-lays the weights for MLAS's GEMM (same kernels, same sums) and costs seconds on a VGG.
            options.AddSessionConfigEntry("session.disable_prepacking", "1");
            using var session = new InferenceSession(path, options);
            batch3 = RunOnnx(session, input);
            batch1 = RunOnnx(session, input[..1]);
        }
        var ran = clock.Elapsed;
        var check = checking.GetAwaiter().GetResult();

        var probabilityDifference = Math.Max(
            TorchvisionReference.MaxAbsDifference(batch3[0], expected),
            TorchvisionReference.MaxAbsDifference(batch1[0], expected[..1]));
        var logitDifference = TorchvisionReference.MaxAbsDifference(batch3[1], expectedLogits);
        var logitSpread = (expectedLogits.max() - expectedLogits.min()).item<float>();
        output.WriteLine(
            $"{architecture} at {side}: max |Δp| {probabilityDifference:E2}, max |Δlogit| {logitDifference:E2} " +
            $"(logits span {logitSpread:F3}), " +
            $"largest p {expected.max().item<float>():F3}; {new FileInfo(path).Length / 1e6:F1} MB; model {created.TotalSeconds:F1} s, " +
            $"export {(exported - created).TotalSeconds:F1} s, ORT {(ran - exported).TotalSeconds:F1} s, checker " +
            $"{(clock.Elapsed - ran).TotalSeconds:F1} s more; " +
            $"CPU {(Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds:F1} s");

        Assert.True(check["ok"]!.GetValue<bool>(), $"{architecture}: the ONNX checker refused the file: {check["error"]}");
        Assert.True(probabilityDifference <= Tolerance, $"{architecture}: max |Δprobability| = {probabilityDifference:E3}");
        Assert.True(logitDifference <= 0.01 * logitSpread, $"{architecture}: max |Δlogit| = {logitDifference:E3}");
        // Logits that barely differ, or probabilities near 0 and 1, would make the 1e-4 comparison say little: a wrong
        // graph moves logits by about their span, and probabilities by about a fifth of that.
        Assert.True(logitSpread > 0.05f, $"{architecture}: the reference logits span only {logitSpread}");
        Assert.True(expected.max().item<float>() < 0.99f, $"{architecture}: the reference probabilities are saturated");
    }

    private string Export(ClassifierNet model, ModelHparams hparams, OnnxExportOptions options)
    {
        var path = System.IO.Path.Combine(_directory.Path, $"{hparams.Architecture}-{Guid.NewGuid():N}.onnx");
        using var file = File.Create(path);
        OnnxExport.Write(model, hparams, file, options);
        return path;
    }

    /// <summary>Runs [probabilities, logits] for a [N,3,S,S] input.</summary>
    private static Tensor[] RunOnnx(InferenceSession session, Tensor input)
    {
        var shape = input.shape.Select(d => (int)d).ToArray();
        var data = input.contiguous().data<float>().ToArray();
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(OnnxExport.InputName, new DenseTensor(data, shape))]);
        return [.. results.Select(r => r.AsTensor<float>())
            .Select(t => tensor(t.ToArray(), [.. t.Dimensions.ToArray().Select(d => (long)d)]))];
    }

    private static ModelHparams Hparams(string architecture, int resize, ImgNorm? norm) =>
        new(architecture, [.. Enumerable.Range(0, Classes).Select(i => $"class {i}")], resize, norm, false, 1, $"model-{architecture}",
            "training-1", null, DateTimeOffset.UnixEpoch, "tests");
}
