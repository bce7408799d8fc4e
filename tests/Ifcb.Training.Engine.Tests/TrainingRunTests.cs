using System.Text.Json;
using Ifcb.Models.Checkpoints;
using Ifcb.Testing;

namespace Ifcb.Training.Engine.Tests;

/// <summary>Real training on the 30 real IFCB sample PNGs, tiny enough for 2 cores (resnet18 at 32×32, a few epochs).</summary>
public sealed class TrainingRunTests : IDisposable
{
    private static readonly string Sample = Path.Combine(RepoPaths.Root, "testdata", "training-sample");
    private readonly string _scratch = Directory.CreateTempSubdirectory("ifcb-train-test-").FullName;

    private static TrainingOptions Options(int emax = 2) => new()
    {
        Architecture = "resnet18",
        TrainId = "sample",
        Pretrained = false,
        Seed = 1234,
        Resize = 32,
        BatchSize = 8,
        Emax = emax,
        Emin = 1,
        DecodeWorkers = 1,
    };

    private async Task<(TrainingResult Result, DirectoryArtifactSink Sink)> TrainAsync(string name, TrainingOptions options,
        ITrainingObserver? observer = null, CancellationToken cancellationToken = default, DirectoryArtifactSink? sink = null)
    {
        sink ??= new DirectoryArtifactSink(Path.Combine(_scratch, name));
        var inputs = TrainingPreparation.FromSource(options, Sample, weights: null);
        var result = await new TrainingRun(inputs, sink, observer ?? new RecordingObserver()).RunAsync(cancellationToken);
        return (result, sink);
    }

    [Fact]
    public async Task Writes_neuston_style_outputs_and_a_loadable_best_checkpoint()
    {
        var observer = new RecordingObserver();
        var (result, sink) = await TrainAsync("outputs", Options(), observer);

        Assert.Equal(2, result.Epochs.Count);
        Assert.True(result.Epochs[0].Best);
        Assert.InRange(result.BestEpoch, 0, 1);
        Assert.Equal(2, observer.Epochs.Count);
        Assert.Contains(observer.Batches, b => b.Batch == b.BatchesPerEpoch && b.BatchesPerEpoch == 3); // 24 images / 8

        var dir = sink.Directory;
        var csv = File.ReadAllLines(Path.Combine(dir, "epochs.csv"));
        Assert.Equal("epoch,best,train_loss,val_loss,f1_macro,f1_weighted,val_loss_mean,accuracy,seconds,images_per_second,lr",
            csv[0]);
        Assert.Equal(3, csv.Length);
        Assert.StartsWith("0,True,", csv[1], StringComparison.Ordinal);

        // 30 PNGs, default 80:20 split per class: 11/3 and 13/3.
        Assert.Equal(24, File.ReadAllText(Path.Combine(dir, "training_images.list")).Split('\n').Length);
        Assert.Equal(6, File.ReadAllText(Path.Combine(dir, "validation_images.list")).Split('\n').Length);

        using var results = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, "results.json")));
        var root = results.RootElement;
        Assert.Equal(["Mesodinium_major", "Strombidium-like"], root.GetProperty("class_labels").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(6, root.GetProperty("output_scores").GetArrayLength());
        Assert.Equal([0, 0, 0, 1, 1, 1], root.GetProperty("input_classes").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(6, root.GetProperty("confusion_matrix").EnumerateArray().SelectMany(r => r.EnumerateArray()).Sum(e => e.GetInt32()));
        foreach (var row in root.GetProperty("output_scores").EnumerateArray())
            Assert.Equal(1.0, row.EnumerateArray().Sum(e => e.GetDouble()), 4);

        foreach (var picture in new[] { "loss_curves.png", "f1_curves.png", "confusion_matrix.png" })
            Assert.True(new FileInfo(Path.Combine(dir, picture)).Length > 1000, $"{picture} missing or empty");

        using var args = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, "args.json")));
        Assert.Equal(1234, args.RootElement.GetProperty("seed").GetInt64());
        Assert.False(args.RootElement.GetProperty("pretrained").GetBoolean());
        // neuston's optimiser when no option says otherwise: Adam, lr 1e-3, no weight decay, no schedule.
        Assert.Equal("adam", args.RootElement.GetProperty("optimizer").GetString());
        Assert.Equal(1e-3, args.RootElement.GetProperty("lr").GetDouble());
        Assert.Equal(0, args.RootElement.GetProperty("weight_decay").GetDouble());
        Assert.Equal("none", args.RootElement.GetProperty("lr_schedule").GetString());
        Assert.All(result.Epochs, e => Assert.Equal(1e-3, e.LearningRate));

        await using var checkpoint = File.OpenRead(Path.Combine(dir, result.BestCheckpointName));
        var loaded = Checkpoint.Load(checkpoint);
        using var model = loaded.Model;
        Assert.Equal("resnet18", loaded.Hparams.Architecture);
        Assert.Equal(32, loaded.Hparams.Resize);
        Assert.Equal(2, model.NumClasses);
        Assert.Equal("adam", loaded.Hparams.Extras!["optimizer"]);
        Assert.Equal("0.001", loaded.Hparams.Extras["lr"]);

        // The best epoch's per-class thresholds, as ClassThresholdSearch chooses them from results.json's own scores, are
        // in results.json and in the checkpoint (3 validation images per class: the minimum).
        var truth = root.GetProperty("input_classes").EnumerateArray().Select(e => e.GetInt32()).ToList();
        var winners = root.GetProperty("output_classes").EnumerateArray().Select(e => e.GetInt32()).ToList();
        var scores = root.GetProperty("output_scores").EnumerateArray()
            .Select(r => r.EnumerateArray().Select(e => e.GetSingle()).ToArray()).ToList();
        var expected = ClassThresholdSearch.Compute(truth, winners, scores, 2).Select(t => t.Threshold).ToList();
        var written = root.GetProperty("class_thresholds").EnumerateArray()
            .Select(e => e.ValueKind == JsonValueKind.Null ? (double?)null : e.GetDouble()).ToList();
        Assert.Equal(expected, written);
        Assert.Equal(expected, loaded.Hparams.ClassThresholds);
        Assert.Equal(2, root.GetProperty("class_thresholds_f1").GetArrayLength());
        // The same in class_thresholds.csv, for ifcb run --thresholds.
        Assert.Equal(["class,threshold", .. new[] { "Mesodinium_major", "Strombidium-like" }.Select((label, c) =>
                $"{label},{expected[c]?.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}")],
            File.ReadAllLines(Path.Combine(dir, "class_thresholds.csv")).Where(l => !l.StartsWith('#')));
        Assert.Equal(ClassThresholdSearch.MinimumValidationImages,
            root.GetProperty("class_thresholds_min_validation_images").GetInt32());
    }

    [Fact]
    public async Task Same_seed_gives_the_same_losses()
    {
        var (first, _) = await TrainAsync("det-a", Options());
        var (second, _) = await TrainAsync("det-b", Options());

        Assert.Equal(first.Epochs.Select(e => e.TrainLoss), second.Epochs.Select(e => e.TrainLoss));
        Assert.Equal(first.Epochs.Select(e => e.ValLoss), second.Epochs.Select(e => e.ValLoss));
    }

    [Fact]
    public async Task An_interrupted_run_resumes_after_its_last_completed_epoch()
    {
        var (uninterrupted, _) = await TrainAsync("resume-reference", Options(emax: 3));

        using var cancel = new CancellationTokenSource();
        var stopAfterSecondEpoch = new RecordingObserver(onEpoch: e => { if (e.Epoch == 1) cancel.Cancel(); });
        var (interrupted, sink) = await TrainAsync("resume", Options(emax: 3), stopAfterSecondEpoch, cancel.Token);
        Assert.True(interrupted.Cancelled);
        Assert.Equal(2, interrupted.Epochs.Count);

        var resumedObserver = new RecordingObserver();
        var (resumed, _) = await TrainAsync("resume", Options(emax: 3), resumedObserver, sink: sink);

        Assert.Equal(2, resumed.ResumedFromEpoch);
        Assert.Equal(2, resumedObserver.FirstEpoch);
        Assert.Equal([2], resumedObserver.Epochs.Select(e => e.Epoch)); // epochs 0 and 1 were not re-run
        Assert.Equal(3, resumed.Epochs.Count);
        Assert.Equal(interrupted.Epochs.Select(e => e.TrainLoss), resumed.Epochs.Take(2).Select(e => e.TrainLoss));
        // Model, optimizer and shuffle order are restored exactly, so the resumed epoch matches an uninterrupted run.
        Assert.Equal(uninterrupted.Epochs[2].TrainLoss, resumed.Epochs[2].TrainLoss, 5);
        Assert.Equal(uninterrupted.Epochs[2].ValLoss, resumed.Epochs[2].ValLoss, 5);
    }

    [Fact]
    public async Task A_resumed_run_with_optimizer_options_and_a_schedule_equals_an_uninterrupted_one()
    {
        // SGD's momentum buffers and weight decay, and a cosine schedule whose rate changes every epoch: all of it must
        // survive the interruption for the third epoch to match.
        var options = Options(emax: 2) with
        {
            Optimizer = OptimizerKind.Sgd,
            LearningRate = 0.05,
            WeightDecay = 1e-3,
            LrSchedule = LrSchedule.Cosine,
        };
        var (uninterrupted, _) = await TrainAsync("schedule-reference", options);

        using var cancel = new CancellationTokenSource();
        var stopAfterFirstEpoch = new RecordingObserver(onEpoch: e => { if (e.Epoch == 0) cancel.Cancel(); });
        var (interrupted, sink) = await TrainAsync("schedule-resume", options, stopAfterFirstEpoch, cancel.Token);
        Assert.True(interrupted.Cancelled);
        var (resumed, _) = await TrainAsync("schedule-resume", options, sink: sink);

        Assert.Equal(1, resumed.ResumedFromEpoch);
        // Cosine over emax 2: 0.05, then 0.05·(1 + cos(π/2))/2.
        double[] rates = [0.05, 0.025];
        Assert.Equal(rates, uninterrupted.Epochs.Select(e => e.LearningRate!.Value), (a, b) => Math.Abs(a - b) < 1e-15);
        Assert.Equal(uninterrupted.Epochs.Select(e => e.LearningRate), resumed.Epochs.Select(e => e.LearningRate));
        Assert.Equal(uninterrupted.Epochs[1].TrainLoss, resumed.Epochs[1].TrainLoss);
        Assert.Equal(uninterrupted.Epochs[1].ValLoss, resumed.Epochs[1].ValLoss);

        using var args = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(sink.Directory, "args.json")));
        Assert.Equal("sgd", args.RootElement.GetProperty("optimizer").GetString());
        Assert.Equal("cosine", args.RootElement.GetProperty("lr_schedule").GetString());
        Assert.Equal(1e-3, args.RootElement.GetProperty("weight_decay").GetDouble());

        // The same folder cannot be continued with another optimiser: its saved state would not fit.
        var error = await Assert.ThrowsAsync<ArgumentException>(() =>
            TrainAsync("schedule-resume", options with { Optimizer = OptimizerKind.Adam }, sink: sink));
        Assert.Contains("written with optimizer sgd", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Class_weights_and_the_balanced_sampler_train_and_are_recorded()
    {
        var weights = ClassWeights.FromCsv("class,weight\nMesodinium_major,2.5\nStrombidium-like,0.5\n");
        var (weighted, sink) = await TrainAsync("weighted", Options(emax: 1) with { ClassWeights = weights, Resize = 16 });
        Assert.True(double.IsFinite(weighted.Epochs[0].TrainLoss));
        using (var args = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(sink.Directory, "args.json"))))
        {
            Assert.Equal("file", args.RootElement.GetProperty("class_weights").GetString());
            var values = args.RootElement.GetProperty("class_weight_values");
            Assert.Equal(2.5, values.GetProperty("Mesodinium_major").GetDouble());
            Assert.Equal(0.5, values.GetProperty("Strombidium-like").GetDouble());
        }
        await using (var checkpoint = File.OpenRead(Path.Combine(sink.Directory, weighted.BestCheckpointName)))
        {
            var loaded = Checkpoint.Load(checkpoint);
            loaded.Model.Dispose();
            Assert.Equal("file", loaded.Hparams.Extras!["class_weights"]);
            Assert.Equal("none", loaded.Hparams.Extras["sampler"]);
        }

        var (sampled, sampledSink) = await TrainAsync("sampled", Options(emax: 1) with { Sampler = SamplerKind.Balanced, Resize = 16 });
        Assert.True(double.IsFinite(sampled.Epochs[0].TrainLoss));
        using var sampledArgs = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(sampledSink.Directory, "args.json")));
        Assert.Equal("balanced", sampledArgs.RootElement.GetProperty("sampler").GetString());
        Assert.Equal("none", sampledArgs.RootElement.GetProperty("class_weights").GetString());

        // A file that does not fit the dataset's classes fails before training, naming them.
        var error = Assert.Throws<ArgumentException>(() => TrainingPreparation.FromSource(
            Options() with { ClassWeights = ClassWeights.FromCsv("Mesodinium_major,1\nCiliophora,2\n") }, Sample, weights: null));
        Assert.Contains("does not train: 'Ciliophora'", error.Message, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    private sealed class RecordingObserver(Action<EpochRecord>? onEpoch = null) : ITrainingObserver
    {
        public List<BatchProgress> Batches { get; } = [];
        public List<EpochRecord> Epochs { get; } = [];
        public int FirstEpoch { get; private set; } = -1;

        public ValueTask OnStartAsync(int firstEpoch, CancellationToken cancellationToken)
        {
            FirstEpoch = firstEpoch;
            return ValueTask.CompletedTask;
        }

        public ValueTask OnBatchAsync(BatchProgress progress, CancellationToken cancellationToken)
        {
            Batches.Add(progress);
            return ValueTask.CompletedTask;
        }

        public ValueTask OnEpochAsync(EpochRecord epoch, CancellationToken cancellationToken)
        {
            Epochs.Add(epoch);
            onEpoch?.Invoke(epoch);
            return ValueTask.CompletedTask;
        }
    }
}
