using System.Text.Json;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Ifcb.Inference.Tests;

/// <summary>
/// RUN with <c>--engine onnx</c> (the checkpoint's exported graph in ONNX Runtime) against the default torch engine:
/// the same bins, failures and result files, scores within 1e-4, read back from the .h5 files by h5py.
/// </summary>
[Collection(ReferenceModelCollection.Name)]
public sealed class OnnxEngineTests(ReferenceModelFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public void Both_engines_write_equal_scores_for_every_bin_in_testdata()
    {
        // The normalised model: its img-norm is applied by the preprocessor for torch and inside the graph for onnx.
        var torch = Run(InferenceEngine.Torch);
        var onnx = Run(InferenceEngine.Onnx);

        Assert.Equal(["IFCB5_2012_028_081515", "D20130526T095207_IFCB013"], torch.Summary.Completed.Select(c => c.Id));
        Assert.Equal(torch.Summary.Completed.Select(c => (c.Id, c.ImageCount)), onnx.Summary.Completed.Select(c => (c.Id, c.ImageCount)));
        Assert.Equal(torch.Summary.Failed.Select(f => (f.Id, f.Reason)), onnx.Summary.Failed.Select(f => (f.Id, f.Reason)));
        var worst = 0.0;
        var winners = new HashSet<int>();
        foreach (var (ours, theirs) in torch.Summary.Completed.Zip(onnx.Summary.Completed))
        {
            var expected = Inspect(ours.OutputFiles.Single());
            var actual = Inspect(theirs.OutputFiles.Single());
            Assert.Equal(Values(expected, "roi_numbers").Select(e => e.GetInt32()),
                Values(actual, "roi_numbers").Select(e => e.GetInt32()));
            Assert.Equal(Values(expected, "class_labels").Select(e => e.GetString()),
                Values(actual, "class_labels").Select(e => e.GetString()));
            var expectedClasses = Values(expected, "output_classes").Select(e => e.GetInt32()).ToArray();
            Assert.Equal(expectedClasses, Values(actual, "output_classes").Select(e => e.GetInt32()));
            winners.UnionWith(expectedClasses);
            foreach (var (a, b) in Scores(expected).Zip(Scores(actual)))
                worst = Math.Max(worst, Math.Abs(a - b));
        }
        output.WriteLine($"largest score difference between the engines: {worst:E2}");
        Assert.True(worst <= 1e-4, $"largest score difference between the engines {worst:E2}");
        // Both classes win somewhere, so agreeing on the classes means something.
        Assert.Equal(2, winners.Count);
    }

    [Fact]
    public void The_onnx_engine_refuses_any_device_but_the_cpu()
    {
        // The meta device stands in for a GPU: constructing a CUDA device fails on a machine without one.
        var error = Assert.Throws<ArgumentException>(() => new BatchClassifier(fixture.Plain, 8, META, InferenceEngine.Onnx));
        Assert.Contains("CPU", error.Message, StringComparison.Ordinal);
    }

    private (RunSummary Summary, string Folder) Run(InferenceEngine engine)
    {
        var outdir = fixture.NewFolder();
        var summary = new RunEngine(fixture.Normalised).Run(new RunRequest(ReferenceModelFixture.BinsFolder, "engines")
        {
            OutputDirectory = outdir,
            Engine = engine,
            BatchSize = 8,
            Timestamp = DateTimeOffset.UnixEpoch,
        });
        return (summary, outdir);
    }

    private static JsonElement Inspect(string h5) => JsonResults.Parse(ReferenceModelFixture.RunPython("inspect-h5", h5));

    private static IEnumerable<JsonElement> Values(JsonElement inspected, string dataset) =>
        inspected.GetProperty(dataset).GetProperty("values").EnumerateArray();

    private static IEnumerable<double> Scores(JsonElement inspected) =>
        Values(inspected, "output_scores").SelectMany(row => row.EnumerateArray().Select(e => e.GetDouble()));
}
