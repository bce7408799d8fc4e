// Training overhead benchmark: one epoch through the real engine (loader, bookkeeping, validation, artifacts) against
// the same optimisation steps and validation forwards on tensors prepared in memory beforehand, in the same process.
// Prints the ratio (goal: overhead ≤ 5%) and the time from RunAsync to the first finished batch.
//
//   dotnet run --project bench/Ifcb.Training.Bench -c Release -- [--copies 34] [--resize 64] [--batch 16]
//       [--model resnet18] [--glibc-defaults]
//
// Like the Training service, it runs with NativeAllocator's malloc environment (restarting itself with it) unless
// --glibc-defaults is given.
using System.Diagnostics;
using System.Globalization;
using Ifcb.Data.Imaging;
using Ifcb.Data.Loading;
using Ifcb.Models;
using Ifcb.Testing;
using Ifcb.Training.Engine;
using static TorchSharp.torch;

var allocator = args.Contains("--glibc-defaults") ? "glibc-defaults (--glibc-defaults)" : NativeAllocator.ConfigureOrRestart();
var copies = Arg("--copies", 34);
var resize = Arg("--resize", 64);
var batchSize = Arg("--batch", 16);
var model = args.SkipWhile(a => a != "--model").Skip(1).FirstOrDefault() ?? "resnet18";

var sample = Path.Combine(RepoPaths.Root, "testdata", "training-sample");
var root = Directory.CreateTempSubdirectory("ifcb-train-bench-").FullName;
try
{
    foreach (var classDir in Directory.GetDirectories(sample))
    {
        var target = Directory.CreateDirectory(Path.Combine(root, Path.GetFileName(classDir))).FullName;
        foreach (var file in Directory.GetFiles(classDir))
            for (var c = 0; c < copies; c++)
                File.Copy(file, Path.Combine(target, $"{c:000}_{Path.GetFileName(file)}"));
    }
    var options = new TrainingOptions
    {
        Architecture = model, TrainId = "bench", Pretrained = false, Seed = 1, Resize = resize, BatchSize = batchSize, Emax = 1, Emin = 1,
    };
    var inputs = TrainingPreparation.FromSource(options, root, weights: null);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{model} @{resize}px, batch {batchSize}, {inputs.Training.Images.Count} training + " +
        $"{inputs.Validation.Images.Count} validation images, {get_num_threads()} torch threads, malloc: {allocator}"));

    // Warm-up: first-touch costs (allocator, kernels) should not count against either side.
    PureCompute(inputs, options, steps: 2);

    var engine = await EngineEpoch(inputs, Path.Combine(root, "out"));
    var pure = PureCompute(inputs, options, steps: int.MaxValue);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"engine epoch (loader, training, validation, outputs): {engine.Epoch:0.00} s"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"pure compute (same steps on preloaded tensors):     {pure:0.00} s"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"ratio engine / pure = {engine.Epoch / pure:0.000}  (overhead {(engine.Epoch / pure - 1) * 100:0.0}%, goal ≤ 5%)"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"RunAsync → first finished batch: {engine.FirstBatch * 1000:0} ms"));
}
finally
{
    Directory.Delete(root, recursive: true);
}

int Arg(string name, int fallback) =>
    args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() is { } value ? int.Parse(value, CultureInfo.InvariantCulture) : fallback;

static async Task<(double Epoch, double FirstBatch)> EngineEpoch(TrainingInputs inputs, string outdir)
{
    var observer = new TimingObserver();
    var watch = Stopwatch.StartNew();
    observer.Start = watch;
    await new TrainingRun(inputs, new DirectoryArtifactSink(outdir), observer).RunAsync(CancellationToken.None);
    return (observer.Epoch?.Seconds ?? watch.Elapsed.TotalSeconds, observer.FirstBatch);
}

// The same work without the loader and bookkeeping: decode and preprocess everything first (not timed), then time
// the training steps and the validation forwards.
static double PureCompute(TrainingInputs inputs, TrainingOptions options, int steps)
{
    var preprocess = new ImagePreprocessor(new PreprocessOptions(options.EffectiveResize));
    Tensor Stack(IReadOnlyList<Ifcb.Data.Datasets.LabelledImage> images) =>
        stack(images.Select(i => tensor(preprocess.Process(LocalFileImageSource.Instance.Load(i.Path)),
            [3, options.EffectiveResize, options.EffectiveResize])).ToArray());
    using var trainX = Stack(inputs.Training.Images);
    using var trainY = tensor(inputs.Training.Images.Select(i => (long)i.ClassIndex).ToArray());
    using var valX = Stack(inputs.Validation.Images);
    using var valY = tensor(inputs.Validation.Images.Select(i => (long)i.ClassIndex).ToArray());
    manual_seed(1);
    using var net = ModelZoo.Create(options.Architecture, inputs.Classes.Count, pretrainedLayout: false);
    using var optimizer = optim.Adam(net.parameters(), lr: Optimization.DefaultLearningRate);
    var watch = Stopwatch.StartNew();
    net.train();
    var n = trainX.shape[0];
    var done = 0;
    for (long start = 0; start < n && done < steps; start += options.BatchSize, done++)
    {
        using var scope = NewDisposeScope();
        var length = Math.Min(options.BatchSize, n - start);
        optimizer.zero_grad();
        var loss = ClassifierLoss.ForwardLoss(net, trainX.narrow(0, start, length), trainY.narrow(0, start, length));
        loss.backward();
        optimizer.step();
        _ = loss.item<float>();
    }
    if (steps == int.MaxValue)
    {
        net.eval();
        using var noGrad = no_grad();
        for (long start = 0; start < valX.shape[0]; start += options.BatchSize)
        {
            using var scope = NewDisposeScope();
            var length = Math.Min(options.BatchSize, valX.shape[0] - start);
            var logits = net.Logits(valX.narrow(0, start, length));
            _ = nn.functional.cross_entropy(logits, valY.narrow(0, start, length)).item<float>();
            _ = nn.functional.softmax(logits, 1).data<float>().ToArray();
        }
    }
    return watch.Elapsed.TotalSeconds;
}

internal sealed class TimingObserver : ITrainingObserver
{
    public Stopwatch Start { get; set; } = Stopwatch.StartNew();
    public double FirstBatch { get; private set; } = double.NaN;
    public EpochRecord? Epoch { get; private set; }

    public ValueTask OnStartAsync(int firstEpoch, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask OnBatchAsync(BatchProgress progress, CancellationToken cancellationToken)
    {
        if (double.IsNaN(FirstBatch))
            FirstBatch = Start.Elapsed.TotalSeconds;
        return ValueTask.CompletedTask;
    }

    public ValueTask OnEpochAsync(EpochRecord epoch, CancellationToken cancellationToken)
    {
        Epoch = epoch;
        return ValueTask.CompletedTask;
    }
}
