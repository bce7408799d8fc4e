using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Ifcb.Data.Imaging;
using Ifcb.Data.Loading;
using Ifcb.Models;
using Ifcb.Models.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Ifcb.Training.Engine;

/// <summary>
/// neuston TRAIN's loop (upstream neuston_net.py:37-160, neuston_models.py:48-149): Adam(lr 1e-3)
/// (neuston_models.py:63-64) unless the options choose another optimiser, learning rate or schedule; train_loss = sum
/// of per-batch losses (aux term included for inception_v3; class-weighted with --class-weights), val_loss = sum of
/// per-batch mean CE of the main logits (never weighted), best = strictly lower val_loss, early stopping with the emin−1
/// gate. After every epoch it steps the learning-rate schedule and writes epochs.csv and resume state (model, optimiser,
/// and what the schedule needs); on every new best, the checkpoint and results.json. A run whose resume state exists
/// continues after the last completed epoch instead of starting over, exactly as if it had not been interrupted.
/// </summary>
public sealed class TrainingRun(TrainingInputs inputs, IArtifactSink sink, ITrainingObserver observer)
{
    private static readonly ActivitySource Activity = new("Ifcb.Training");

    private TrainingOptions Options => inputs.Options;

    public async Task<TrainingResult> RunAsync(CancellationToken cancellationToken)
    {
        Options.Validate();
        var classCount = inputs.Classes.Count;
        var device = Ifcb.Models.DeviceSelection.Resolve(Options.Device);
        torch.manual_seed(inputs.Seed);

        using var model = await inputs.CreateModel(cancellationToken);
        model.to(device);
        using var optimizer = Optimization.CreateOptimizer(Options.Optimizer, model.parameters(), Options.LearningRate,
            Options.EffectiveWeightDecay);
        var schedule = new EpochLrSchedule(Options.LrSchedule, optimizer, Options.Emax);

        var epochs = new List<EpochRecord>();
        var stopping = new EarlyStopping(Options.Emin, Options.Emax, Options.Estop);
        var startEpoch = await TryResumeAsync(model, optimizer, schedule, epochs, stopping, cancellationToken);
        if (startEpoch == 0)
            await WriteStartArtifactsAsync(cancellationToken);
        await observer.OnStartAsync(startEpoch, cancellationToken);

        var preprocess = new PreprocessOptions(Options.EffectiveResize, Options.Flip, Options.ImgNorm);
        var sampleWeights = Options.Sampler == SamplerKind.Balanced
            ? ClassWeights.BalancedSampleWeights(classCount, inputs.Training.Images)
            : null;
        var trainLoader = new BatchLoader(inputs.Training.Images, inputs.Images,
            new LoaderOptions(preprocess, Options.BatchSize, Shuffle: true, Seed: unchecked((int)inputs.Seed), Training: true,
                DecodeWorkers: Options.DecodeWorkers, SampleWeights: sampleWeights));
        // The training loss only: val_loss stays unweighted, comparable across runs and with neuston.
        using var classWeights = Options.ClassWeights.Resolve(inputs.Classes, inputs.Training.Images) is { } weights
            ? tensor(weights.Select(w => (float)w).ToArray()).to(device)
            : null;
        var valLoader = new BatchLoader(inputs.Validation.Images, inputs.Images,
            new LoaderOptions(preprocess, Options.BatchSize, Shuffle: false, Seed: unchecked((int)inputs.Seed), Training: false,
                DecodeWorkers: Options.DecodeWorkers));

        ClassificationMetrics? bestMetrics = null;
        var cancelled = false;
        for (var epoch = startEpoch; epoch < Options.Emax; epoch++)
        {
            using var epochActivity = Activity.StartActivity("epoch");
            epochActivity?.SetTag("ifcb.epoch", epoch);
            var watch = Stopwatch.StartNew();
            var learningRate = schedule.LearningRate;
            // --freeze features [--freeze-epochs N]: decided per epoch, so a resumed run freezes exactly as the first did.
            WarmStart.SetBodyFrozen(model, Options.BodyFrozenIn(epoch));
            var (trainLoss, trainImages, completed) =
                await TrainEpochAsync(model, optimizer, trainLoader, classWeights, epoch, device, cancellationToken);
            if (!completed)
            {
                cancelled = true;
                break;
            }
            var validation = Validate(model, valLoader, device, classCount);
            watch.Stop();

            var metrics = ClassificationMetrics.Compute(validation.Truth, validation.Predicted, classCount);
            var best = stopping.Observe(epoch, validation.SumOfBatchMeans);
            var record = new EpochRecord(epoch, best, trainLoss, validation.SumOfBatchMeans, validation.PerSampleMean,
                metrics.F1Macro, metrics.F1Weighted, metrics.Accuracy, watch.Elapsed.TotalSeconds,
                (trainImages + validation.Truth.Count) / Math.Max(1e-9, watch.Elapsed.TotalSeconds), learningRate);
            epochs.Add(record);
            epochActivity?.SetTag("ifcb.val_loss", record.ValLoss);
            TrainingMetrics.RecordEpoch(Options.EffectiveModelId, record);

            if (best)
            {
                bestMetrics = metrics;
                await WriteBestAsync(model, epoch, metrics, validation, cancellationToken);
            }
            await sink.WriteAsync(TrainingArtifacts.EpochsCsv, TrainingOutputs.EpochsCsv(epochs), cancellationToken);
            schedule.Step(validation.SumOfBatchMeans);
            await SaveResumeStateAsync(model, optimizer, schedule, epochs, stopping, cancellationToken);
            await observer.OnEpochAsync(record, cancellationToken);

            if (stopping.ShouldStop(epoch))
                break;
        }

        bestMetrics ??= await ReadBestMetricsAsync(CancellationToken.None);
        await WritePicturesAsync(epochs, stopping.BestEpoch, bestMetrics);
        return new TrainingResult(epochs, stopping.BestEpoch, bestMetrics, TrainingArtifacts.BestCheckpoint(Options.EffectiveModelId),
            cancelled, startEpoch);
    }

    private async Task<(double Loss, int Images, bool Completed)> TrainEpochAsync(ClassifierNet model,
        TorchSharp.Modules.OptimizerHelper optimizer, BatchLoader loader, Tensor? classWeights, int epoch, Device device,
        CancellationToken cancellationToken)
    {
        model.train();
        double lossSum = 0;
        var images = 0;
        var batchNumber = 0;
        var watch = Stopwatch.StartNew();
        try
        {
            await foreach (var batch in loader.ReadEpochAsync(epoch, cancellationToken))
            {
                using (batch)
                {
                    // A batch of one would reach inception_v3's aux BatchNorm as a 1×1 map and fail (neuston pitfall 11).
                    if (batch.Count == 1 && model.Architecture == "inception_v3")
                        continue;
                    lossSum += Step(model, optimizer, batch, classWeights, device);
                    images += batch.Count;
                }
                batchNumber++;
                await observer.OnBatchAsync(new BatchProgress(epoch, batchNumber, loader.BatchCount,
                    images / Math.Max(1e-9, watch.Elapsed.TotalSeconds), lossSum), cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return (lossSum, images, false);
        }
        return (lossSum, images, true);
    }

    /// <summary>One optimisation step; synchronous so the dispose scope stays on one thread.</summary>
    private static double Step(ClassifierNet model, TorchSharp.Modules.OptimizerHelper optimizer, Batch batch, Tensor? classWeights,
        Device device)
    {
        using var scope = NewDisposeScope();
        var input = batch.Images.to(device);
        var target = batch.Labels.to(device);
        optimizer.zero_grad();
        var loss = ClassifierLoss.ForwardLoss(model, input, target, classWeights);
        loss.backward();
        optimizer.step();
        return loss.item<float>();
    }

    private static ValidationPass Validate(ClassifierNet model, BatchLoader loader, Device device, int classCount)
    {
        model.eval();
        var truth = new List<int>(loader.ImageCount);
        var predicted = new List<int>(loader.ImageCount);
        var indices = new List<int>(loader.ImageCount);
        var scores = new List<float[]>(loader.ImageCount);
        double sumOfBatchMeans = 0, sumOfLosses = 0;
        using var noGrad = no_grad();
        foreach (var batch in loader.ReadEpoch(0))
        {
            using (batch)
            using (var scope = NewDisposeScope())
            {
                var logits = model.Logits(batch.Images.to(device));
                var target = batch.Labels.to(device);
                var batchMean = nn.functional.cross_entropy(logits, target).item<float>();
                sumOfBatchMeans += batchMean;
                sumOfLosses += (double)batchMean * batch.Count;
                var probabilities = nn.functional.softmax(logits, 1).cpu().data<float>().ToArray();
                for (var i = 0; i < batch.Count; i++)
                {
                    var row = probabilities.AsSpan(i * classCount, classCount).ToArray();
                    scores.Add(row);
                    predicted.Add(ArgMax(row));
                    truth.Add((int)batch.LabelData[i]);
                    indices.Add(batch.Indices[i]);
                }
            }
        }
        return new ValidationPass(truth, predicted, indices, scores, sumOfBatchMeans, truth.Count == 0 ? 0 : sumOfLosses / truth.Count);
    }

    private static int ArgMax(float[] row)
    {
        var best = 0;
        for (var i = 1; i < row.Length; i++)
            if (row[i] > row[best])
                best = i;
        return best;
    }

    private ModelHparams Hparams() => new(
        Options.Architecture, inputs.Classes, Options.EffectiveResize, Options.ImgNorm, Options.EffectivePretrained, inputs.Seed,
        Options.EffectiveModelId, Options.TrainId, inputs.DatasetFingerprint, DateTimeOffset.UtcNow, TrainingOutputs.PlatformVersion,
        TrainingOutputs.HparamsExtras(inputs));

    private async Task WriteStartArtifactsAsync(CancellationToken cancellationToken)
    {
        var display = inputs.DisplayPath ?? (p => p);
        await sink.WriteAsync(TrainingArtifacts.TrainingImages, TrainingOutputs.ImageList(inputs.Training.Images, display),
            cancellationToken);
        await sink.WriteAsync(TrainingArtifacts.ValidationImages, TrainingOutputs.ImageList(inputs.Validation.Images, display),
            cancellationToken);
        await sink.WriteAsync(TrainingArtifacts.Args, TrainingOutputs.Args(inputs), cancellationToken);
    }

    private async Task WriteBestAsync(ClassifierNet model, int epoch, ClassificationMetrics metrics, ValidationPass validation,
        CancellationToken cancellationToken)
    {
        var thresholds = ClassThresholdSearch.Compute(validation.Truth, validation.Predicted, validation.Scores, inputs.Classes.Count);
        using var buffer = new MemoryStream();
        Checkpoint.Save(buffer, Hparams() with { ClassThresholds = [.. thresholds.Select(t => t.Threshold)] }, model);
        await sink.WriteAsync(TrainingArtifacts.BestCheckpoint(Options.EffectiveModelId), buffer.ToArray(), cancellationToken);
        var display = inputs.DisplayPath ?? (p => p);
        await sink.WriteAsync(TrainingArtifacts.Results,
            TrainingOutputs.ResultsJson(inputs, epoch, metrics, validation, display, thresholds), cancellationToken);
        await sink.WriteAsync(TrainingArtifacts.ClassThresholds, ClassThresholdSearch.ToCsv(inputs.Classes, thresholds), cancellationToken);
        await sink.WriteAsync(TrainingArtifacts.BestMetrics, JsonSerializer.SerializeToUtf8Bytes(
            BestMetricsDocument.From(epoch, metrics), TrainingOutputs.Json), cancellationToken);
    }

    /// <summary>Loss and F1 curves and the best epoch's confusion matrix, next to the other artifacts.</summary>
    private async Task WritePicturesAsync(IReadOnlyList<EpochRecord> epochs, int bestEpoch, ClassificationMetrics? best)
    {
        if (epochs.Count == 0)
            return;
        var points = epochs.Select(e => new Ifcb.Reports.EpochPoint(e.Epoch, e.TrainLoss, e.ValLoss, e.F1Macro, e.F1Weighted)).ToList();
        foreach (var picture in Ifcb.Reports.TrainingPlots.RenderAll(points, bestEpoch, best?.ConfusionMatrix, inputs.Classes,
            Options.EffectiveModelId))
            await sink.WriteAsync(picture.Name, picture.Png, CancellationToken.None);
    }

    private async Task<ClassificationMetrics?> ReadBestMetricsAsync(CancellationToken cancellationToken)
    {
        var bytes = await sink.ReadAsync(TrainingArtifacts.BestMetrics, cancellationToken);
        return bytes is null ? null : JsonSerializer.Deserialize<BestMetricsDocument>(bytes, TrainingOutputs.Json)?.ToMetrics();
    }

    private async Task SaveResumeStateAsync(ClassifierNet model, TorchSharp.Modules.OptimizerHelper optimizer, EpochLrSchedule schedule,
        List<EpochRecord> epochs, EarlyStopping stopping, CancellationToken cancellationToken)
    {
        await sink.WriteAsync(TrainingArtifacts.ResumeModel, SaveToBytes(path => model.save(path)), cancellationToken);
        await sink.WriteAsync(TrainingArtifacts.ResumeOptimizer, SaveToBytes(path => optimizer.save_state_dict(path)), cancellationToken);
        // Written last: the state file is the commit point of a completed epoch.
        var state = new ResumeState(epochs, stopping.BestValLoss, stopping.BestEpoch, stopping.WaitCount, inputs.Seed,
            Options.Optimizer.Name(), schedule.Kind.Name(), schedule.Steps, schedule.LearningRate);
        await sink.WriteAsync(TrainingArtifacts.ResumeState, JsonSerializer.SerializeToUtf8Bytes(state, TrainingOutputs.Json),
            cancellationToken);
    }

    private async Task<int> TryResumeAsync(ClassifierNet model, TorchSharp.Modules.OptimizerHelper optimizer, EpochLrSchedule schedule,
        List<EpochRecord> epochs, EarlyStopping stopping, CancellationToken cancellationToken)
    {
        var stateBytes = await sink.ReadAsync(TrainingArtifacts.ResumeState, cancellationToken);
        if (stateBytes is null)
            return 0;
        var state = JsonSerializer.Deserialize<ResumeState>(stateBytes, TrainingOutputs.Json)
            ?? throw new InvalidDataException($"{TrainingArtifacts.ResumeState} is empty.");
        var modelBytes = await sink.ReadAsync(TrainingArtifacts.ResumeModel, cancellationToken)
            ?? throw new InvalidDataException($"{TrainingArtifacts.ResumeState} exists but {TrainingArtifacts.ResumeModel} does not.");
        var optimizerBytes = await sink.ReadAsync(TrainingArtifacts.ResumeOptimizer, cancellationToken)
            ?? throw new InvalidDataException($"{TrainingArtifacts.ResumeState} exists but {TrainingArtifacts.ResumeOptimizer} does not.");
        CheckResumableWith(state);
        LoadFromBytes(modelBytes, path => model.load(path));
        // The schedule's state is a function of the completed epochs' val_loss; the optimiser's (its moments and the
        // learning rate the schedule last set) is loaded afterwards and must agree with it.
        schedule.Replay(state.Epochs.Select(e => e.ValLoss));
        var replayed = schedule.LearningRate;
        LoadFromBytes(optimizerBytes, path => optimizer.load_state_dict(path));
        if (state.LearningRate is { } saved && !SameRate(saved, replayed))
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                $"The resume state's learning rate ({saved:R}) is not what the {schedule.Kind.Name()} schedule gives after " +
                $"{state.Epochs.Count} epochs ({replayed:R}); the run was started with other options. Use a new output folder."));
        epochs.AddRange(state.Epochs);
        stopping.Restore(state.BestValLoss, state.BestEpoch, state.WaitCount);
        return state.Epochs.Count;
    }

    /// <summary>A resume state written with another optimiser or schedule cannot continue this run.</summary>
    private void CheckResumableWith(ResumeState state)
    {
        var optimizer = state.Optimizer ?? OptimizerKind.Adam.Name();
        var schedule = state.LrSchedule ?? LrSchedule.None.Name();
        if (optimizer != Options.Optimizer.Name() || schedule != Options.LrSchedule.Name())
            throw new ArgumentException(
                $"The resume state in this output folder was written with optimizer {optimizer} and lr-schedule {schedule}, " +
                $"not {Options.Optimizer.Name()} and {Options.LrSchedule.Name()}: rerun with the same options or use a new output folder.");
    }

    private static bool SameRate(double a, double b) => Math.Abs(a - b) <= 1e-12 * Math.Max(Math.Abs(a), Math.Abs(b));

    private static byte[] SaveToBytes(Action<string> save)
    {
        var path = Path.GetTempFileName();
        try
        {
            save(path);
            return File.ReadAllBytes(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static void LoadFromBytes(byte[] bytes, Action<string> load)
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, bytes);
            load(path);
        }
        finally
        {
            File.Delete(path);
        }
    }
}

/// <summary>The validation pass of one epoch, in validation order.</summary>
internal sealed record ValidationPass(
    List<int> Truth, List<int> Predicted, List<int> Indices, List<float[]> Scores, double SumOfBatchMeans, double PerSampleMean);

/// <summary>
/// What a run needs to continue after its last completed epoch. The optimiser's state is a file of its own
/// (<see cref="TrainingArtifacts.ResumeOptimizer"/>); the schedule is rebuilt from <see cref="Epochs"/>' val_loss, and
/// <see cref="LearningRate"/> (the next epoch's) checks it. The last four are null in states written before they existed
/// (Adam, no schedule).
/// </summary>
internal sealed record ResumeState(List<EpochRecord> Epochs, double BestValLoss, int BestEpoch, int WaitCount, long Seed,
    string? Optimizer = null, string? LrSchedule = null, int? ScheduleSteps = null, double? LearningRate = null);
