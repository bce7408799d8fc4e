using System.Diagnostics;
using Ifcb.Contracts;
using Ifcb.Data.Datasets;
using Ifcb.Data.Datasets.Shards;
using Ifcb.Models.Weights;
using Ifcb.Platform;
using Ifcb.Platform.Jobs;
using Ifcb.Platform.Storage;
using Ifcb.Training.Engine;
using Ifcb.Training.Engine.Jobs;
using MassTransit;

namespace Ifcb.Training;

/// <summary>
/// Takes a TrainModel command: starts the job on this worker if it may run here (see <see cref="JobExecutor"/>: the
/// lease is taken, the message acknowledged, the work runs in the background).
/// </summary>
public sealed class TrainModelConsumer(TrainingJobStore jobs, JobExecutor executor, TrainingJobWork work) : IConsumer<TrainModel>
{
    public Task Consume(ConsumeContext<TrainModel> context) =>
        executor.AcceptAsync(jobs, context.Message.JobId,
            (job, ct) => JobQueue.SendAsync(context, job, ct),
            work.RunAsync, work.AnnounceEndAsync, context.CancellationToken);
}

/// <summary>
/// A training job's work on a worker: materialise the dataset, resolve img-norm (NormStats), train (resuming from the
/// last completed epoch of an earlier attempt), record the best checkpoint and announce ModelTrained so the Registry
/// registers it. Runs under a <see cref="JobAttemptRunner{T}"/>, which decides what a failure means.
/// </summary>
public sealed class TrainingJobWork(
    TrainingJobStore jobs,
    BlobDatasetStore datasets,
    IWeightsStore weights,
    RegistryCheckpoints registry,
    WorkerCache cache,
    ServiceIdentity identity,
    IRequestClient<ComputeNormStats> normStats,
    IBus bus,
    JobKernelOptions options,
    ILogger<TrainingJobWork> logger)
{
    private static readonly ActivitySource Activity = new("Ifcb.Training");

    /// <summary>How often a worker asks NormStats whether an img-norm=auto computation is done.</summary>
    private static readonly TimeSpan NormStatsPoll = TimeSpan.FromSeconds(1);

    public async Task RunAsync(TrainingJobRecord started, CancellationToken shutdown)
    {
        using var activity = Activity.StartActivity("train");
        activity?.SetTag("ifcb.job_id", started.JobId);
        activity?.SetTag("ifcb.attempt", started.Attempts);
        if (started.Attempts > 1)
            logger.LogInformation("Resuming training job {JobId} (attempt {Attempt}) after {Epochs} completed epochs", started.JobId,
                started.Attempts, started.Epochs.Count);
        var runner = new JobAttemptRunner<TrainingJobRecord>(jobs, options, logger);
        var result = await runner.RunAsync(started, identity.InstanceId, TrainAsync, shutdown);
        switch (result.Outcome)
        {
            case JobRunOutcome.Released:
                await SendAgainAsync(result.Job);
                break;
            case JobRunOutcome.Ended:
                await AnnounceEndAsync(result.Job, CancellationToken.None);
                break;
        }
    }

    /// <summary>Announces a final job: ModelTrained for a success (the Registry registers it), else TrainingFailed/Cancelled.</summary>
    public async Task AnnounceEndAsync(TrainingJobRecord job, CancellationToken cancellationToken)
    {
        try
        {
            switch (job.State)
            {
                case JobState.Succeeded:
                    // A sweep's trial waits for its sweep to choose the winner, which alone is registered.
                    if (job.Registers)
                        await SendModelTrainedAsync(job, cancellationToken);
                    logger.LogInformation("Training job {JobId} succeeded: best epoch {Best} of {Epochs}", job.JobId, job.BestEpoch,
                        job.Epochs.Count);
                    break;
                case JobState.Cancelled:
                    await bus.Publish(new TrainingCancelled(job.JobId, job.Epochs.Count), cancellationToken);
                    logger.LogInformation("Training job {JobId} cancelled after {Epochs} epochs: {Reason}", job.JobId, job.Epochs.Count,
                        job.Error);
                    break;
                case JobState.Failed:
                    await bus.Publish(new TrainingFailed(job.JobId, job.Error ?? "failed"), cancellationToken);
                    logger.LogWarning("Training job {JobId} failed: {Reason}", job.JobId, job.Error);
                    break;
            }
        }
        catch (Exception e) when (Faults.IsTransient(e) || e is OperationCanceledException)
        {
            // The state is recorded; ModelTrained is sent again by the reconciler's follow-up, the other events are notices.
            logger.LogWarning("Training job {JobId} is {State}, but announcing it failed ({Reason}).", job.JobId, job.State,
                Faults.Reason(e));
        }
    }

    /// <summary>How long the Registry may take to copy a checkpoint after ModelTrained is sent (each resend grants anew).</summary>
    public static readonly TimeSpan CheckpointGrantValidity = TimeSpan.FromDays(7);

    /// <summary>
    /// Sends ModelTrained for a succeeded job (again, if the Registry has not answered) and records when. The Registry
    /// gets a read-only grant to the checkpoint blob, not Training's container name.
    /// </summary>
    public async Task SendModelTrainedAsync(TrainingJobRecord job, CancellationToken cancellationToken)
    {
        var grant = await BlobReadGrant.ForBlobAsync(job.BestCheckpointBlob(jobs), jobs.Time.GetUtcNow() + CheckpointGrantValidity,
            cancellationToken);
        await bus.Publish(job.ToModelTrained(grant), cancellationToken);
        await jobs.UpdateAsync(job.JobId, j => j.NeedsFollowUp() ? j with { ModelTrainedSentAt = jobs.Time.GetUtcNow() } : null,
            cancellationToken);
    }

    private async Task SendAgainAsync(TrainingJobRecord job)
    {
        try
        {
            await JobQueue.SendAsync(bus, job, CancellationToken.None);
            await jobs.UpdateAsync(job.JobId, j => j.State == JobState.Queued ? j.Dispatched(jobs.Time.GetUtcNow()) : null,
                CancellationToken.None);
        }
        catch (Exception e)
        {
            logger.LogInformation("Training job {JobId} was released; the reconciler sends it again ({Reason}).", job.JobId,
                Faults.Reason(e));
        }
    }

    private async Task<JobCompletion<TrainingJobRecord>> TrainAsync(JobLease<TrainingJobRecord> lease, CancellationToken cancellationToken)
    {
        using var dataset = await datasets.OpenForJobAsync(lease.Job.Request.Dataset, cache, logger, lease.JobId, cancellationToken);
        var inputs = await PrepareAsync(lease, dataset, cancellationToken);
        var observer = new JobProgressObserver(jobs, lease, bus, logger);
        var result = await new TrainingRun(inputs, jobs.Artifacts(lease.JobId), observer).RunAsync(cancellationToken);
        if (result.Cancelled)
        {
            // Stopped between batches: a cancel request or deadline (the runner records CANCELLED), or this worker is
            // going away or lost the job (the runner then releases it or writes nothing).
            return JobCompletion<TrainingJobRecord>.Stopped(j => j with { Epochs = [.. result.Epochs] });
        }

        var (sha, size) = await BestCheckpointChecksumAsync(jobs.Artifacts(lease.JobId), result.BestCheckpointName, cancellationToken);
        return JobCompletion<TrainingJobRecord>.Success(j => j with
        {
            Epochs = [.. result.Epochs],
            BestEpoch = result.BestEpoch,
            BestCheckpoint = result.BestCheckpointName,
            CheckpointSha256 = sha,
            CheckpointSize = size,
        });
    }

    private async Task<TrainingInputs> PrepareAsync(JobLease<TrainingJobRecord> lease, CachedDataset dataset,
        CancellationToken cancellationToken)
    {
        var job = lease.Job;
        var spec = job.Request;
        if (job.DatasetFingerprint is { } expected && expected != dataset.Manifest.Fingerprint)
            throw new InvalidOperationException(
                $"Dataset '{spec.Dataset}' changed since the job was queued " +
                $"(fingerprint {expected[..12]}… → {dataset.Manifest.Fingerprint[..12]}…); start a new job.");

        ImgNorm? norm = null;
        if (spec.WantsAutoImgNorm)
            norm = job.ImgNorm ?? await AskNormStatsAsync(job, cancellationToken);

        WarmStartSource? from = null;
        if (spec.FromVersion is { } parentVersion)
        {
            // Versions never change, so one copy per worker serves every job that starts from it.
            var parent = ModelRef.Parse(parentVersion);
            var path = await registry.DownloadAsync(parent, Path.Combine(cache.Directory, "parents",
                $"{parent.Name}-v{parent.Version}.ifcbmodel"), cancellationToken);
            from = WarmStartSource.Read(path, spec.From ?? parentVersion, parentVersion);
        }
        var options = spec.ToOptions(norm, from);
        var inputs = TrainingPreparation.FromSpec(options,
            seed => DatasetSpec.FromImagesPerClass(spec.Dataset, dataset.ImagesPerClass, options.DatasetOptions(seed)), dataset, weights,
            dataset.Manifest.Fingerprint, key => $"{spec.Dataset}/{key}");
        var fetch = dataset.Fetch;
        var (updated, _) = await jobs.UpdateAsync(job.JobId, j => j.State == JobState.Running && j.Worker == identity.InstanceId
            ? j.WithCurrentAttempt(a => a with { Dataset = fetch }) with
            {
                Classes = [.. inputs.Classes],
                ImgNorm = options.ImgNorm,
                ParentPretrained = from?.ParentPretrained,
                DatasetFingerprint = dataset.Manifest.Fingerprint,
            }
            : null, cancellationToken);
        lease.Observe(updated);
        return inputs;
    }

    /// <summary>
    /// img_norm=auto: asks NormStats for the statistics under a job id derived from this training job (or the one its
    /// sweep gave it, shared by its trials of one input size), so that every poll (and a later attempt after a lost
    /// worker, and the sweep's other trials) finds the same computation instead of starting another. Polling
    /// keeps each request short: nothing holds a broker message for the length of a computation.
    /// </summary>
    private async Task<ImgNorm> AskNormStatsAsync(TrainingJobRecord job, CancellationToken cancellationToken)
    {
        var spec = job.Request;
        var resize = spec.Resize ?? Ifcb.Models.ModelZoo.InputSize(spec.Architecture);
        var request = new ComputeNormStats(spec.Dataset,
            new NormStatsOptions(resize, spec.ClassConfigCsv, spec.ClassConfigColumn, spec.ClassMin, spec.ClassMax, spec.Seed,
                NeustonEstimator: false, ShardSize: 0),
            spec.NormStatsJobId ?? NormStatsJobIdFor(job.JobId));
        while (true)
        {
            NormStatsResult result;
            try
            {
                result = (await normStats.GetResponse<NormStatsResult>(request, cancellationToken, RequestTimeout.After(s: 30))).Message;
            }
            catch (RequestTimeoutException e)
            {
                throw IfcbException.Unavailable("img_norm=auto: the NormStats service did not answer within 30 s.", e);
            }
            if (result.Error is not null)
                throw new InvalidOperationException($"img_norm=auto: NormStats could not compute statistics: {result.Error}");
            if (result.Finished)
            {
                return result.ImgNorm
                    ?? throw new InvalidOperationException("img_norm=auto: NormStats reported a finished job without statistics.");
            }
            await Task.Delay(NormStatsPoll, cancellationToken);
        }
    }

    /// <summary>The norm-stats job id a training job's img_norm=auto uses (32 hex digits, stable per training job).</summary>
    public static string NormStatsJobIdFor(string trainingJobId) =>
        Convert.ToHexStringLower(
            System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes("img-norm-auto:" + trainingJobId)))[..32];

    /// <summary>
    /// The best checkpoint's SHA-256 and size as recorded when it was written (<see cref="BlobArtifactSink"/>): no
    /// download. Only a checkpoint written by an earlier build, which recorded no hash, is read once to hash it.
    /// </summary>
    private static async Task<(string Sha256, long Size)> BestCheckpointChecksumAsync(BlobArtifactSink artifacts, string name,
        CancellationToken cancellationToken)
    {
        var (recorded, size) = await artifacts.RecordedChecksumAsync(name, cancellationToken);
        return recorded is not null ? (recorded, size) : await HashBlobAsync(artifacts.Blob(name), cancellationToken);
    }

    private static async Task<(string Sha256, long Size)> HashBlobAsync(Azure.Storage.Blobs.BlobClient blob,
        CancellationToken cancellationToken)
    {
        await using var content = (await blob.DownloadStreamingAsync(cancellationToken: cancellationToken)).Value.Content;
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        long size = 0;
        int read;
        while ((read = await content.ReadAsync(buffer, cancellationToken)) > 0)
        {
            sha.AppendData(buffer, 0, read);
            size += read;
        }
        return (Convert.ToHexStringLower(sha.GetHashAndReset()), size);
    }
}

/// <summary>
/// Mirrors the run's progress into the job record (only while this worker holds the job) and hands what it reads back
/// to the lease, so a cancel request is noticed within a batch. Progress writes are best effort: a storage blip skips
/// one update instead of failing the epoch; the final record carries every epoch.
/// </summary>
internal sealed class JobProgressObserver(TrainingJobStore jobs, JobLease<TrainingJobRecord> lease, IPublishEndpoint bus, ILogger logger)
    : ITrainingObserver
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);
    private readonly List<EpochRecord> _epochs = [];
    private bool _firstBatchRecorded;
    private long _lastUpdate = Stopwatch.GetTimestamp() - (long)(Interval.TotalSeconds * Stopwatch.Frequency);

    public ValueTask OnStartAsync(int firstEpoch, CancellationToken cancellationToken) =>
        UpdateAsync(j => j with { ResumedFromEpoch = firstEpoch });

    public async ValueTask OnBatchAsync(BatchProgress progress, CancellationToken cancellationToken)
    {
        var first = !_firstBatchRecorded;
        if (!first && Stopwatch.GetElapsedTime(_lastUpdate) < Interval && progress.Batch < progress.BatchesPerEpoch)
            return;
        _firstBatchRecorded = true;
        _lastUpdate = Stopwatch.GetTimestamp();
        var now = jobs.Time.GetUtcNow();
        await UpdateAsync(j => (first ? j.WithCurrentAttempt(a => a with { FirstBatchAt = now }) : j) with
        {
            Epoch = progress.Epoch,
            Batch = progress.Batch,
            BatchesPerEpoch = progress.BatchesPerEpoch,
            ImagesPerSecond = progress.ImagesPerSecond,
        });
        await PublishAsync(new TrainingProgressed(lease.JobId, progress.Epoch, progress.Batch, progress.BatchesPerEpoch,
            progress.ImagesPerSecond, progress.RunningTrainLoss, null, null, lease.Worker));
    }

    public async ValueTask OnEpochAsync(EpochRecord epoch, CancellationToken cancellationToken)
    {
        _epochs.Add(epoch);
        await UpdateAsync(j => j with
        {
            Epoch = epoch.Epoch,
            Epochs = [.. j.Epochs.Where(e => _epochs.TrueForAll(mine => mine.Epoch != e.Epoch)).Concat(_epochs).OrderBy(e => e.Epoch)],
            BestEpoch = epoch.Best ? epoch.Epoch : j.BestEpoch,
        });
        await PublishAsync(new TrainingProgressed(lease.JobId, epoch.Epoch, 0, 0, epoch.ImagesPerSecond, epoch.TrainLoss, epoch.ValLoss,
            epoch.F1Weighted, lease.Worker));
    }

    /// <summary>Progress events are notices for watchers: a broker blip skips one rather than failing the epoch.</summary>
    private async ValueTask PublishAsync(TrainingProgressed progress)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await bus.Publish(progress, timeout.Token);
        }
        catch (Exception e) when (Faults.IsTransient(e) || e is OperationCanceledException)
        {
            logger.LogDebug("Progress event of job {JobId} not sent ({Reason}).", lease.JobId, Faults.Reason(e));
        }
    }

    private async ValueTask UpdateAsync(Func<TrainingJobRecord, TrainingJobRecord> change)
    {
        try
        {
            var (job, _) = await jobs.UpdateAsync(lease.JobId,
                j => j.State == JobState.Running && j.Worker == lease.Worker ? change(j) : null, CancellationToken.None);
            lease.Observe(job);
        }
        catch (Exception e) when (Faults.IsTransient(e))
        {
            logger.LogDebug("Progress of job {JobId} not recorded ({Reason}); the next update or the final record catches up.", lease.JobId,
                Faults.Reason(e));
        }
    }
}

/// <summary>
/// A worker's local storage under <c>Ifcb:CacheDirectory</c> (default <c>{temp}/ifcb-cache</c>): the dataset shard cache
/// <c>shards/</c>, shared by every job of this worker (and by the workers of one machine), kept across restarts and
/// held to <c>Ifcb:ShardCacheBytes</c> (default 20 GiB) by evicting the least recently used shards; and a per-process
/// folder for RUN outputs and parent checkpoints, deleted when the service stops.
/// </summary>
public sealed class WorkerCache : IDisposable
{
    public const long DefaultShardCacheBytes = 20L * 1024 * 1024 * 1024;

    public WorkerCache(IConfiguration configuration, ServiceIdentity identity, ILogger<WorkerCache> logger)
    {
        var root = configuration["Ifcb:CacheDirectory"] is { Length: > 0 } configured
            ? configured
            : Path.Combine(Path.GetTempPath(), "ifcb-cache");
        Directory = Path.Combine(root, identity.InstanceId);
        System.IO.Directory.CreateDirectory(Directory);
        var limit = configuration.GetValue("Ifcb:ShardCacheBytes", DefaultShardCacheBytes);
        if (limit <= 0)
            throw new InvalidOperationException($"Ifcb:ShardCacheBytes is {limit}; give the shard cache's size limit in bytes (> 0).");
        Shards = new ShardCache(Path.Combine(root, "shards"), limit, logger);
    }

    /// <summary>This process's own folder (RUN work, parent checkpoints).</summary>
    public string Directory { get; }

    /// <summary>The dataset shards, shared by all jobs on this worker.</summary>
    public ShardCache Shards { get; }

    public void Dispose()
    {
        Shards.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
