using System.Diagnostics;
using Ifcb.Contracts;
using Ifcb.Data;
using Ifcb.Data.Datasets;
using Ifcb.Models.Weights;
using Ifcb.Training.Engine;
using Ifcb.Training.Engine.Jobs;
using MassTransit;
using Microsoft.Extensions.Hosting;

namespace Ifcb.Training;

/// <summary>
/// Runs a training job (the TrainModel command). Any Training instance may take it; one job per worker slot. A job
/// whose worker died is redelivered by RabbitMQ and continues from its last completed epoch (the engine reads the
/// resume state from the job's artifacts). User cancellation is a flag in the job record, checked between batches.
/// </summary>
public sealed class TrainModelConsumer(
    TrainingJobStore jobs,
    BlobDatasetStore datasets,
    IWeightsStore weights,
    WorkerCache cache,
    ServiceIdentity identity,
    IRequestClient<ComputeNormStats> normStats,
    ILogger<TrainModelConsumer> logger) : IConsumer<TrainModel>
{
    private static readonly ActivitySource Activity = new("Ifcb.Training");

    public async Task Consume(ConsumeContext<TrainModel> context)
    {
        var jobId = context.Message.JobId;
        var job = await jobs.GetAsync(jobId, context.CancellationToken);
        if (job is null)
        {
            logger.LogWarning("TrainModel for unknown job {JobId}; ignored", jobId);
            return;
        }
        if (job.IsTerminal)
            return;
        if (job.CancelRequested)
        {
            await jobs.UpdateAsync(jobId, j => j with { State = TrainingJobState.Cancelled }, context.CancellationToken);
            await context.Publish(new TrainingCancelled(jobId, job.Epochs.Count));
            return;
        }

        using var activity = Activity.StartActivity("train");
        activity?.SetTag("ifcb.job_id", jobId);
        job = await jobs.UpdateAsync(jobId, j => j with
        {
            State = TrainingJobState.Running,
            Worker = identity.InstanceId,
            Attempts = j.Attempts + 1,
        }, context.CancellationToken);
        if (job.Attempts > 1)
            logger.LogInformation("Resuming training job {JobId} (attempt {Attempt}) after {Epochs} completed epochs", jobId, job.Attempts, job.Epochs.Count);

        using var userCancel = new CancellationTokenSource();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(userCancel.Token, context.CancellationToken);
        try
        {
            var inputs = await PrepareAsync(job, linked.Token);
            var observer = new JobProgressObserver(jobs, context, jobId, identity.InstanceId, userCancel);
            var result = await new TrainingRun(inputs, jobs.Artifacts(jobId), observer).RunAsync(linked.Token);

            if (result.Cancelled && !userCancel.IsCancellationRequested)
                throw new OperationCanceledException("The worker is shutting down; the job resumes on redelivery.");
            if (result.Cancelled)
            {
                await jobs.UpdateAsync(jobId, j => j with { State = TrainingJobState.Cancelled, Epochs = [.. result.Epochs] }, CancellationToken.None);
                await context.Publish(new TrainingCancelled(jobId, result.Epochs.Count));
                logger.LogInformation("Training job {JobId} cancelled after {Epochs} epochs", jobId, result.Epochs.Count);
                return;
            }
            await CompleteAsync(context, inputs, result);
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            throw; // not acknowledged: RabbitMQ redelivers and another worker resumes the job
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogError(e, "Training job {JobId} failed", jobId);
            var reason = e is ArgumentException or InvalidOperationException or InvalidDataException or KeyNotFoundException or WeightsNotFoundException
                ? e.Message
                : $"{e.GetType().Name}: {e.Message}";
            await jobs.UpdateAsync(jobId, j => j with { State = TrainingJobState.Failed, Error = reason }, CancellationToken.None);
            await context.Publish(new TrainingFailed(jobId, reason));
        }
    }

    private async Task<TrainingInputs> PrepareAsync(TrainingJobRecord job, CancellationToken cancellationToken)
    {
        var spec = job.Request;
        var materialized = await datasets.MaterializeAsync(spec.Dataset, cache.Directory, cancellationToken: cancellationToken);
        if (job.DatasetFingerprint is { } expected && expected != materialized.Manifest.Fingerprint)
            throw new InvalidOperationException(
                $"Dataset '{spec.Dataset}' changed since the job was queued (fingerprint {expected[..12]}… → {materialized.Manifest.Fingerprint[..12]}…); start a new job.");

        ImgNorm? norm = null;
        if (spec.WantsAutoImgNorm)
            norm = job.ImgNormMean is { } mean && job.ImgNormStd is { } std ? new ImgNorm(mean, std) : await AskNormStatsAsync(spec, cancellationToken);

        var options = spec.ToOptions(norm);
        var root = materialized.LocalRoot;
        var inputs = TrainingPreparation.FromSource(options, root, weights, materialized.Manifest.Fingerprint,
            path => $"{spec.Dataset}/{Path.GetRelativePath(root, path)}");
        await jobs.UpdateAsync(job.JobId, j => j with
        {
            Classes = [.. inputs.Classes],
            ImgNormMean = options.ImgNorm?.Mean.ToArray(),
            ImgNormStd = options.ImgNorm?.Std.ToArray(),
            DatasetFingerprint = materialized.Manifest.Fingerprint,
        }, cancellationToken);
        return inputs;
    }

    private async Task<ImgNorm> AskNormStatsAsync(TrainingRequestSpec spec, CancellationToken cancellationToken)
    {
        var resize = spec.Resize ?? Ifcb.Models.ModelZoo.InputSize(spec.Architecture);
        var response = await normStats.GetResponse<NormStatsResult>(new ComputeNormStats(spec.Dataset,
            new NormStatsOptions(resize, spec.ClassConfigCsv, spec.ClassConfigColumn, spec.ClassMin, spec.ClassMax, spec.Seed,
                NeustonEstimator: false, ShardSize: 0)), cancellationToken, RequestTimeout.After(m: 30));
        var result = response.Message;
        if (result.Error is not null)
            throw new InvalidOperationException($"img_norm=auto: NormStats could not compute statistics: {result.Error}");
        return new ImgNorm(result.Mean, result.Std);
    }

    private async Task CompleteAsync(ConsumeContext<TrainModel> context, TrainingInputs inputs, TrainingResult result)
    {
        var jobId = context.Message.JobId;
        var artifacts = jobs.Artifacts(jobId);
        var checkpoint = artifacts.Blob(result.BestCheckpointName);
        var bytes = (await checkpoint.DownloadContentAsync()).Value.Content.ToArray();
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
        var metrics = new Dictionary<string, double>();
        var best = result.Epochs.FirstOrDefault(e => e.Epoch == result.BestEpoch);
        if (best is not null)
        {
            metrics["val_loss"] = best.ValLoss;
            metrics["val_loss_mean"] = best.ValLossMean;
            metrics["train_loss"] = best.TrainLoss;
            metrics["f1_weighted"] = best.F1Weighted;
            metrics["f1_macro"] = best.F1Macro;
            metrics["accuracy"] = best.Accuracy;
            metrics["epochs"] = result.Epochs.Count;
        }
        var job = await jobs.UpdateAsync(jobId, j => j with
        {
            State = TrainingJobState.Succeeded,
            Epochs = [.. result.Epochs],
            BestEpoch = result.BestEpoch,
            BestCheckpoint = result.BestCheckpointName,
        }, CancellationToken.None);
        var o = inputs.Options;
        await context.Publish(new ModelTrained(jobId, o.TrainId, o.EffectiveModelId, o.Architecture, inputs.Classes,
            o.ImgNorm?.Mean, o.ImgNorm?.Std, o.Pretrained, o.EffectiveResize, inputs.Seed, job.Request.Dataset,
            inputs.DatasetFingerprint, result.BestEpoch, metrics, jobs.Container.Name, TrainingJobStore.ArtifactBlob(jobId, result.BestCheckpointName),
            sha, bytes.LongLength, job.Request.RegisterAs));
        logger.LogInformation("Training job {JobId} succeeded: best epoch {Best} of {Epochs}", jobId, result.BestEpoch, result.Epochs.Count);
    }
}

/// <summary>
/// Mirrors the run's progress into the job record and onto the bus; turns the cancel flag into a cancellation. Its own
/// writes ignore cancellation so that the record stays consistent; the loop notices the cancellation at the next batch.
/// </summary>
internal sealed class JobProgressObserver(
    TrainingJobStore jobs, IPublishEndpoint bus, string jobId, string worker, CancellationTokenSource userCancel) : ITrainingObserver
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    public async ValueTask OnStartAsync(int firstEpoch, CancellationToken cancellationToken) =>
        await jobs.UpdateAsync(jobId, j => j with { ResumedFromEpoch = firstEpoch }, CancellationToken.None);
    private long _lastUpdate = Stopwatch.GetTimestamp() - (long)(Interval.TotalSeconds * Stopwatch.Frequency);

    public async ValueTask OnBatchAsync(BatchProgress progress, CancellationToken cancellationToken)
    {
        if (Stopwatch.GetElapsedTime(_lastUpdate) < Interval && progress.Batch < progress.BatchesPerEpoch)
            return;
        _lastUpdate = Stopwatch.GetTimestamp();
        var job = await jobs.UpdateAsync(jobId, j => j with
        {
            Epoch = progress.Epoch,
            Batch = progress.Batch,
            BatchesPerEpoch = progress.BatchesPerEpoch,
            ImagesPerSecond = progress.ImagesPerSecond,
        }, CancellationToken.None);
        if (job.CancelRequested)
            await userCancel.CancelAsync();
        await bus.Publish(new TrainingProgressed(jobId, progress.Epoch, progress.Batch, progress.BatchesPerEpoch,
            progress.ImagesPerSecond, progress.RunningTrainLoss, null, null, worker), CancellationToken.None);
    }

    public async ValueTask OnEpochAsync(EpochRecord epoch, CancellationToken cancellationToken)
    {
        var job = await jobs.UpdateAsync(jobId, j => j with
        {
            Epoch = epoch.Epoch,
            Epochs = [.. j.Epochs.Where(e => e.Epoch < epoch.Epoch), epoch],
            BestEpoch = epoch.Best ? epoch.Epoch : j.BestEpoch,
        }, CancellationToken.None);
        if (job.CancelRequested)
            await userCancel.CancelAsync();
        await bus.Publish(new TrainingProgressed(jobId, epoch.Epoch, 0, 0, epoch.ImagesPerSecond, epoch.TrainLoss, epoch.ValLoss,
            epoch.F1Weighted, worker), CancellationToken.None);
    }
}

/// <summary>A per-process folder for materialised datasets, deleted when the service stops.</summary>
public sealed class WorkerCache : IDisposable
{
    public WorkerCache(IConfiguration configuration, ServiceIdentity identity)
    {
        var root = configuration["Ifcb:CacheDirectory"] is { Length: > 0 } configured ? configured : Path.Combine(Path.GetTempPath(), "ifcb-cache");
        Directory = Path.Combine(root, identity.InstanceId);
        System.IO.Directory.CreateDirectory(Directory);
    }

    public string Directory { get; }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
