using System.Text.Json;
using Ifcb.Contracts;
using Ifcb.Data;
using Ifcb.Models.Onnx;
using Microsoft.ML.OnnxRuntime;
using static TorchSharp.torch;
using DenseTensor = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>;

namespace Ifcb.Cli.Tests;

/// <summary><c>ifcb models export</c> on a checkpoint file: model.onnx and classes.txt, read back by ONNX Runtime.</summary>
public sealed class ModelExportTests : IDisposable
{
    private static readonly IReadOnlyList<string> Classes = SmallCheckpoint.Classes;
    private static readonly ImgNorm Norm = SmallCheckpoint.Norm;
    private readonly string _temp = Directory.CreateTempSubdirectory("ifcb-cli-export-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    [Fact]
    public async Task Export_writes_an_onnx_model_of_the_checkpoint_and_classes_txt_beside_it()
    {
        var checkpoint = SmallCheckpoint.Write(_temp, out var model);
        using var _ = model;
        var destination = Path.Combine(_temp, "out", "model.onnx");

        var result = await CliRunner.RunAsync("models", "export", checkpoint, "--format", "onnx", "-o", destination, "--json");

        Assert.True(result.ExitCode == 0, result.Error);
        var report = JsonDocument.Parse(result.Output).RootElement;
        Assert.Equal(destination, report.GetProperty("path").GetString());
        Assert.Equal("dynamic", report.GetProperty("batch").GetString());
        Assert.Equal(Classes, File.ReadAllLines(Path.Combine(_temp, "out", "classes.txt")));
        Assert.Equal(Path.Combine(_temp, "out", "classes.txt"), report.GetProperty("classes_path").GetString());
        Assert.False(File.Exists(destination + ".partial"));

        using var session = new InferenceSession(destination);
        Assert.Equal(new[] { -1, 3, 64, 64 }, session.InputMetadata[OnnxExport.InputName].Dimensions);
        var metadata = session.ModelMetadata.CustomMetadataMap;
        Assert.Equal(Classes, JsonSerializer.Deserialize<string[]>(metadata[OnnxMetadataKeys.ClassLabels]));
        Assert.Equal(Norm, ImgNorm.Parse(metadata[OnnxMetadataKeys.ImgNorm]));
        Assert.Equal("export-test", metadata[OnnxMetadataKeys.ModelId]);

        // The checkpoint's weights, not the zoo's random ones: ONNX Runtime agrees with the model that was saved.
        manual_seed(7);
        var input = rand(2, 3, 64, 64);
        Tensor expected;
        using (no_grad())
            expected = model.Logits(Norm.Apply(input)).softmax(1);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(OnnxExport.InputName,
            new DenseTensor(input.data<float>().ToArray(), [2, 3, 64, 64]))]);
        var actual = results.First(r => r.Name == OnnxExport.ProbabilitiesName).AsTensor<float>().ToArray();
        var reference = expected.data<float>().ToArray();
        Assert.True(reference.Max() - reference.Min() > 0.01, "the model's probabilities are uniform; the comparison would prove little");
        Assert.All(actual.Zip(reference), pair =>
            Assert.True(Math.Abs(pair.First - pair.Second) <= 1e-4, $"{pair.First} vs {pair.Second}"));
    }

    [Fact]
    public async Task Static_batch_is_declared_and_the_default_output_is_the_checkpoint_name_with_onnx()
    {
        var checkpoint = SmallCheckpoint.Write(_temp, out var model);
        model.Dispose();

        var result = await CliRunner.RunAsync("models", "export", checkpoint, "--static-batch", "4");

        Assert.True(result.ExitCode == 0, result.Error);
        var destination = Path.ChangeExtension(checkpoint, ".onnx");
        Assert.Contains(destination, result.Output, StringComparison.Ordinal);
        Assert.Contains("input [4, 3, 64, 64]", result.Output, StringComparison.Ordinal);
        using var session = new InferenceSession(destination);
        Assert.Equal(new[] { 4, 3, 64, 64 }, session.InputMetadata[OnnxExport.InputName].Dimensions);
        Assert.True(File.Exists(Path.Combine(_temp, "classes.txt")));
    }

    [Fact]
    public async Task A_missing_checkpoint_exits_3_and_says_how_to_export_a_registered_version()
    {
        var result = await CliRunner.RunAsync("models", "export", "plankton@production", "-o", Path.Combine(_temp, "m.onnx"));
        Assert.Equal(ExitCodes.NotFound, result.ExitCode);
        Assert.Contains("to export a registered version (NAME, NAME/VERSION, NAME@ALIAS) pass --server", result.Error,
            StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_temp, "m.onnx")));
    }

    [Theory]
    [InlineData("--static-batch", "0")]
    [InlineData("--format", "torchscript")]
    public async Task Invalid_flags_exit_2_before_anything_is_written(string flag, string value)
    {
        var checkpoint = SmallCheckpoint.Write(_temp, out var model);
        model.Dispose();
        var result = await CliRunner.RunAsync("models", "export", checkpoint, flag, value, "-o", Path.Combine(_temp, "m.onnx"));
        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.False(File.Exists(Path.Combine(_temp, "m.onnx")));
        Assert.False(File.Exists(Path.Combine(_temp, "classes.txt")));
    }
}
