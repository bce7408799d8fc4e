using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Ifcb.Data.Bins;
using Ifcb.Models.Onnx;
using Ifcb.Testing;
using Xunit.Abstractions;

namespace Ifcb.Inference.Tests;

/// <summary>
/// Our exported ONNX graph in consumers nobody here wrote, fed the way WHOI's amplify_onnx_inference feeds a model:
/// Pillow opens each ROI, converts it to RGB and resizes it bilinearly to the model's size, [0,1], no normalisation
/// (python/amplify_preprocess.py); ONNX Runtime for Node.js (npm onnxruntime-node, node/onnx_consumer.cjs) runs the
/// graph, naming the input as the model declares it. Its probabilities must equal the scores our RUN wrote to .h5
/// (read back by h5py) within 1e-4, for every ROI of every real bin in testdata.
/// </summary>
[Collection(ReferenceModelCollection.Name)]
public sealed class ExternalOnnxConsumerTests(ReferenceModelFixture fixture, ITestOutputHelper output)
{
    private static readonly string NodeFolder = Path.Combine(RepoPaths.Root, "tests", "Ifcb.Inference.Tests", "node");

    [Fact]
    public void Onnx_runtime_for_node_on_pillow_resized_rois_reproduces_the_h5_scores_of_our_run()
    {
        Assert.True(File.Exists(Path.Combine(NodeFolder, "node_modules", "onnxruntime-node", "package.json")),
            $"onnxruntime-node is not installed in {NodeFolder}; run build/prerequisites.sh --tests");
        var work = fixture.NewFolder();
        // The normalised model: its img-norm must be inside the graph, since the consumer does not normalise.
        var checkpoint = fixture.Normalised;
        var size = checkpoint.Hparams.Resize;
        var model = Path.Combine(work, "model.onnx");
        using (var file = File.Create(model))
            OnnxExport.Write(checkpoint.Model, checkpoint.Hparams, file);

        var summary = new RunEngine(checkpoint).Run(new RunRequest(ReferenceModelFixture.BinsFolder, "consumer")
        {
            OutputDirectory = Path.Combine(work, "run"), Engine = InferenceEngine.Torch, BatchSize = 8, Timestamp = DateTimeOffset.UnixEpoch,
        });
        Assert.Equal(["IFCB5_2012_028_081515", "D20130526T095207_IFCB013"], summary.Completed.Select(c => c.Id));

        var worst = 0.0;
        var rois = 0;
        foreach (var bin in summary.Completed)
        {
            var h5 = JsonDocument.Parse(ReferenceModelFixture.RunPython("inspect-h5", bin.OutputFiles.Single())).RootElement;
            var roiNumbers = Values(h5, "roi_numbers").Select(e => e.GetInt32()).ToArray();
            var expected = Values(h5, "output_scores").Select(row => row.EnumerateArray().Select(e => e.GetDouble()).ToArray()).ToArray();

            var adc = Directory.EnumerateFiles(ReferenceModelFixture.BinsFolder, bin.Id + ".adc", SearchOption.AllDirectories)
                .First(path => !path.Contains($"{Path.DirectorySeparatorChar}partial{Path.DirectorySeparatorChar}", StringComparison.Ordinal));
            var pngs = RoiExporter.ExportPngs(RawBin.Open(Path.ChangeExtension(adc, null)), Path.Combine(work, "rois", bin.Id));
            // The PNGs are named BIN_00042: the same ROIs, in the same order, as the .h5 rows.
            Assert.Equal(roiNumbers, pngs.Select(p => int.Parse(Path.GetFileNameWithoutExtension(p)[(bin.Id.Length + 1)..],
                CultureInfo.InvariantCulture)));

            var input = Path.Combine(work, bin.Id + ".f32");
            Run("/usr/bin/python3", [Path.Combine(AppContext.BaseDirectory, "python", "amplify_preprocess.py"),
                size.ToString(CultureInfo.InvariantCulture), input, .. pngs]);
            var result = Path.Combine(work, bin.Id + ".json");
            Run("node", [Path.Combine(NodeFolder, "onnx_consumer.cjs"), model, input, pngs.Count.ToString(CultureInfo.InvariantCulture),
                size.ToString(CultureInfo.InvariantCulture), result]);

            var consumer = JsonDocument.Parse(File.ReadAllText(result)).RootElement;
            Assert.Equal(["input"], consumer.GetProperty("inputNames").EnumerateArray().Select(e => e.GetString()));
            Assert.Equal(["probabilities", "logits"], consumer.GetProperty("outputNames").EnumerateArray().Select(e => e.GetString()));
            Assert.Equal([pngs.Count, checkpoint.Hparams.Classes.Count], consumer.GetProperty("dims").EnumerateArray().Select(e => e.GetInt32()));
            var probabilities = consumer.GetProperty("probabilities").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            for (var row = 0; row < expected.Length; row++)
            {
                for (var c = 0; c < expected[row].Length; c++)
                    worst = Math.Max(worst, Math.Abs(expected[row][c] - probabilities[row * expected[row].Length + c]));
            }
            rois += expected.Length;
        }
        output.WriteLine($"{rois} ROIs; largest difference between onnxruntime-node and our .h5 scores: {worst:E2}");
        Assert.True(rois > 20, $"only {rois} ROIs compared");
        Assert.True(worst <= 1e-4, $"largest difference {worst:E2}");
    }

    private static IEnumerable<JsonElement> Values(JsonElement inspected, string dataset) =>
        inspected.GetProperty(dataset).GetProperty("values").EnumerateArray();

    private static void Run(string program, IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {program}");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments.Take(2))} failed ({process.ExitCode}):\n{stderr.Result}\n{stdout}");
    }
}
