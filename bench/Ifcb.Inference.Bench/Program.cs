using System.Diagnostics;
using System.Globalization;
using Ifcb.Data.Imaging;
using Ifcb.Inference;
using Ifcb.Models;
using Ifcb.Models.Checkpoints;
using Ifcb.Testing;
using static TorchSharp.torch;

// Usage: Ifcb.Inference.Bench [engines|export] [--threads T] [--images N] [--batch B] [--repeats R] [--bins K] [--arch a,b]
// Without a mode: TorchSharp's forward vs torchvision's and end-to-end bins/hour. engines: RUN with ONNX Runtime vs
// TorchSharp vs torchvision's forward (EngineBench). export: ONNX export time and size of every architecture.
// Defaults keep the run to a minute or two on a small machine; scale --images/--repeats/--bins up for steadier numbers.
var mode = args.Length > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? args[0] : "forward";
var options = Options.Parse(mode == "forward" ? args : args[1..]);
set_num_threads(options.Threads);
Console.WriteLine($"threads={options.Threads} images={options.Images} batch={options.Batch} repeats={options.Repeats} bins={options.Bins}");
var work = Directory.CreateTempSubdirectory("ifcb-inference-bench-").FullName;
try
{
    var samples = Directory
        .EnumerateFiles(Path.Combine(RepoPaths.Root, "testdata", "training-sample"), "*.png", SearchOption.AllDirectories)
        .Order(StringComparer.Ordinal).Select(ImageDecoder.DecodeFile).ToList();
    switch (mode)
    {
        case "engines":
            EngineBench.Engines(options, work, samples, RunPython);
            break;
        case "export":
            EngineBench.Export(work);
            break;
        case "forward":
            foreach (var arch in options.Architectures)
                CompareForward(arch, samples, options, work);
            EndToEnd(options, work);
            break;
        default:
            throw new ArgumentException($"unknown mode {mode}; use engines, export or none");
    }
}
finally
{
    Directory.Delete(work, recursive: true);
}

static void CompareForward(string arch, List<DecodedImage> samples, Options options, string work)
{
    const int classes = 10;
    using var model = ModelZoo.Create(arch, classes, pretrainedLayout: false);
    model.eval();
    var size = ModelZoo.InputSize(arch);
    var preprocessor = new ImagePreprocessor(new PreprocessOptions(size));
    var data = new float[options.Images * preprocessor.Options.TensorLength];
    for (var i = 0; i < options.Images; i++)
        preprocessor.Process(samples[i % samples.Count], false, null,
            data.AsSpan(i * preprocessor.Options.TensorLength, preprocessor.Options.TensorLength));
    using var input = tensor(data, [options.Images, 3, size, size]);

    var (weights, inputs) = EngineBench.WriteForTorchvision(model, input, work, arch);

    double Forward()
    {
        var clock = Stopwatch.StartNew();
        for (var r = 0; r < options.Repeats; r++)
        {
            for (var start = 0; start < options.Images; start += options.Batch)
            {
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                var count = Math.Min(options.Batch, options.Images - start);
                _ = model.Logits(input.narrow(0, start, count)).softmax(1);
            }
        }
        return clock.Elapsed.TotalSeconds;
    }

    using (var scope = NewDisposeScope())
    using (no_grad())
        _ = model.Logits(input.narrow(0, 0, Math.Min(options.Batch, options.Images)));
    var ours = Forward();
    var reference = RunPython("torchvision_forward.py", [arch, classes.ToString(CultureInfo.InvariantCulture), weights, inputs,
        options.Batch.ToString(CultureInfo.InvariantCulture), options.Threads.ToString(CultureInfo.InvariantCulture),
        options.Repeats.ToString(CultureInfo.InvariantCulture)]);
    var theirs = double.Parse(reference.Split(' ')[1], CultureInfo.InvariantCulture);
    var rois = (double)options.Images * options.Repeats;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{arch,-13} forward {size}px: TorchSharp {rois / ours,7:F1} ROIs/s   torchvision 0.14 {rois / theirs,7:F1} ROIs/s   " +
        $"time ratio {ours / theirs:F3} (goal <= 1.05)"));
}

static void EndToEnd(Options options, string work)
{
    // K copies of the white bin under distinct bin ids: decode, preprocess, classify and write .h5 per bin.
    var bins = EngineBench.CopyWhiteBin(options.Bins, Path.Combine(work, "bins"));
    using var model = ModelZoo.Create("resnet18", 10, pretrainedLayout: false);
    model.eval();
    var hparams = new ModelHparams("resnet18", [.. Enumerable.Range(0, 10).Select(c => $"class_{c}")], 224, null, false, 0,
        "bench", "bench", null, DateTimeOffset.UtcNow, "bench");
    var engine = new RunEngine(new LoadedCheckpoint(hparams, model));
    var summary = engine.Run(new RunRequest(bins, "bench") { OutputDirectory = Path.Combine(work, "out"), BatchSize = options.Batch });
    if (summary.Completed.Count != options.Bins)
        throw new InvalidOperationException($"expected {options.Bins} bins, completed {summary.Completed.Count}: " +
            $"{string.Join("; ", summary.Failed.Select(f => f.Reason))}");
    var seconds = summary.Elapsed.TotalSeconds;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"end-to-end resnet18, {options.Bins} bins x 19 ROIs -> .h5: {summary.ImagesClassified / seconds:F1} ROIs/s, " +
        $"{options.Bins / seconds * 3600:F0} bins/hour (19-ROI bins; real bins hold hundreds to thousands of ROIs)"));
}

static string RunPython(string script, string[] arguments)
{
    var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
    start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, script));
    foreach (var argument in arguments)
        start.ArgumentList.Add(argument);
    using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start /usr/bin/python3");
    var stderr = process.StandardError.ReadToEndAsync();
    var stdout = process.StandardOutput.ReadToEnd().Trim();
    process.WaitForExit();
    if (process.ExitCode != 0)
        throw new InvalidOperationException($"{script} failed ({process.ExitCode}):\n{stderr.Result}");
    return stdout;
}

internal sealed record Options(int Threads, int Images, int Batch, int Repeats, int Bins, IReadOnlyList<string> Architectures)
{
    public static Options Parse(string[] args)
    {
        var threads = Environment.ProcessorCount;
        int images = 32, batch = 16, repeats = 1, bins = 5;
        IReadOnlyList<string> architectures = ["resnet18", "inception_v3"];
        for (var i = 0; i < args.Length; i++)
        {
            var value = i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--threads": threads = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "--images": images = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "--batch": batch = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "--repeats": repeats = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "--bins": bins = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "--arch": architectures = value.Split(','); break;
                default: throw new ArgumentException($"unknown option {args[i]}; use --threads --images --batch --repeats --bins --arch");
            }
            i++;
        }
        return new Options(threads, images, batch, repeats, bins, architectures);
    }
}
