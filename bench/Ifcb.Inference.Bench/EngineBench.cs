using System.Diagnostics;
using System.Globalization;
using Ifcb.Contracts;
using Ifcb.Data.Imaging;
using Ifcb.Inference;
using Ifcb.Models;
using Ifcb.Models.Checkpoints;
using Ifcb.Models.Onnx;
using Ifcb.Testing;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

/// <summary>
/// <c>engines</c>: RUN throughput (ROIs/s through <see cref="RunEngine"/>, decode to .h5, same bins, same threads) with
/// ONNX Runtime and with TorchSharp, interleaved, medians of the repeats, and torchvision's eval forward in Debian's
/// PyTorch on the same preprocessed tensors (forward only, which flatters it). <c>export</c>: ONNX export time and file
/// size of every architecture.
/// </summary>
internal static class EngineBench
{
    private const int Classes = 10;

    public static void Engines(Options options, string work, IReadOnlyList<DecodedImage> samples, Func<string, string[], string> python)
    {
        var bins = CopyWhiteBin(options.Bins, Path.Combine(work, "engine-bins"));
        Console.WriteLine($"RUN throughput, {options.Bins} bins x 19 ROIs, batch {options.Batch}, {options.Threads} threads, " +
            $"median of {options.Repeats} interleaved runs per engine (the onnx runs include exporting the graph)");
        foreach (var arch in options.Architectures)
        {
            using var model = ModelZoo.Create(arch, Classes, pretrainedLayout: false);
            model.eval();
            var size = ModelZoo.InputSize(arch);
            var hparams = new ModelHparams(arch, [.. Enumerable.Range(0, Classes).Select(c => $"class_{c}")], size,
                new ImgNorm([0.66, 0.66, 0.66], [0.22, 0.22, 0.22]), false, 0, "bench", "bench", null, DateTimeOffset.UtcNow, "bench");
            var checkpoint = new LoadedCheckpoint(hparams, model);
            var rates = new Dictionary<InferenceEngine, List<double>> { [InferenceEngine.Torch] = [], [InferenceEngine.Onnx] = [] };
            for (var r = 0; r < options.Repeats + 1; r++)
            {
                InferenceEngine[] order = r % 2 == 0
                    ? [InferenceEngine.Torch, InferenceEngine.Onnx]
                    : [InferenceEngine.Onnx, InferenceEngine.Torch];
                foreach (var engine in order)
                {
                    var summary = new RunEngine(checkpoint).Run(new RunRequest(bins, "bench")
                    {
                        OutputDirectory = Path.Combine(work, "engine-out", $"{arch}-{engine}-{r}"),
                        BatchSize = options.Batch,
                        Engine = engine,
                    });
                    if (summary.Completed.Count != options.Bins)
                        throw new InvalidOperationException($"{arch} {engine}: {summary.Completed.Count} of {options.Bins} bins");
                    if (r > 0) // the first round warms both up
                        rates[engine].Add(summary.ImagesClassified / summary.Elapsed.TotalSeconds);
                }
            }
            var torch = Median(rates[InferenceEngine.Torch]);
            var onnx = Median(rates[InferenceEngine.Onnx]);
            var torchvision = TorchvisionRate(arch, model, size, samples, options, work, python);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{arch,-13} {size}px: ONNX Runtime {onnx,7:F1} ROIs/s   TorchSharp {torch,7:F1} ROIs/s   onnx/torch {onnx / torch:F2}   " +
                $"torchvision eval forward {torchvision,7:F1} ROIs/s   onnx/torchvision {onnx / torchvision:F2}"));
        }
    }

    public static void Export(string work)
    {
        Console.WriteLine($"ONNX export of every architecture ({Classes} classes, dynamic batch, img-norm baked in)");
        foreach (var arch in ModelZoo.Architectures)
        {
            using var model = ModelZoo.Create(arch, Classes, pretrainedLayout: false);
            var size = ModelZoo.InputSize(arch);
            var hparams = new ModelHparams(arch, [.. Enumerable.Range(0, Classes).Select(c => $"class_{c}")], size,
                new ImgNorm([0.66, 0.66, 0.66], [0.22, 0.22, 0.22]), false, 0, "bench", "bench", null, DateTimeOffset.UtcNow, "bench");
            var path = Path.Combine(work, arch + ".onnx");
            var clock = Stopwatch.StartNew();
            using (var file = File.Create(path))
                OnnxExport.Write(model, hparams, file);
            var seconds = clock.Elapsed.TotalSeconds;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {arch} | {size} | {seconds:F1} s | {new FileInfo(path).Length / 1e6:F1} MB |"));
            File.Delete(path);
        }
    }

    private static double TorchvisionRate(string arch, ClassifierNet model, int size, IReadOnlyList<DecodedImage> samples,
        Options options, string work, Func<string, string[], string> python)
    {
        var preprocessor = new ImagePreprocessor(new PreprocessOptions(size));
        var length = preprocessor.Options.TensorLength;
        var images = options.Bins * 19;
        var data = new float[images * length];
        for (var i = 0; i < images; i++)
            preprocessor.Process(samples[i % samples.Count], false, null, data.AsSpan(i * length, length));
        using var input = tensor(data, [images, 3, size, size]);
        var (weights, inputs) = WriteForTorchvision(model, input, work, arch);
        var rates = new List<double>();
        for (var r = 0; r < options.Repeats; r++)
        {
            var line = python("torchvision_forward.py", [arch, Classes.ToString(CultureInfo.InvariantCulture), weights, inputs,
                options.Batch.ToString(CultureInfo.InvariantCulture), options.Threads.ToString(CultureInfo.InvariantCulture), "1"]);
            rates.Add(double.Parse(line.Split(' ')[0], CultureInfo.InvariantCulture));
        }
        return Median(rates);
    }

    /// <summary>The model's weights and the input tensors as torch files for torchvision_forward.py.</summary>
    public static (string Weights, string Inputs) WriteForTorchvision(ClassifierNet model, Tensor input, string work, string arch)
    {
        var weights = Path.Combine(work, arch + ".pth");
        var inputs = Path.Combine(work, arch + ".input.pth");
        using (var stream = File.Create(weights))
            Checkpoint.ExportPyTorch(model, stream);
        using (var stream = File.Create(inputs))
            PyTorchPickler.PickleStateDict(stream, new Dictionary<string, Tensor> { ["input"] = input });
        return (weights, inputs);
    }

    /// <summary>K copies of the white bin under distinct bin ids.</summary>
    public static string CopyWhiteBin(int count, string folder)
    {
        var white = Path.Combine(RepoPaths.Root, "testdata", "bins", "white", "D2013", "D201305", "D20130526", "D20130526T095207_IFCB013");
        Directory.CreateDirectory(folder);
        for (var i = 0; i < count; i++)
        {
            var lid = string.Create(CultureInfo.InvariantCulture, $"D20130526T{9 + (i / 3600):00}{i / 60 % 60:00}{i % 60:00}_IFCB013");
            foreach (var extension in new[] { ".adc", ".roi", ".hdr" })
                File.Copy(white + extension, Path.Combine(folder, lid + extension), overwrite: true);
        }
        return folder;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
