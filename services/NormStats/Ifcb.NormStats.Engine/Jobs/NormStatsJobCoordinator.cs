using System.Globalization;
using Ifcb.Data.Datasets;
using Ifcb.Platform;
using Ifcb.Platform.Jobs;

namespace Ifcb.NormStats.Engine.Jobs;

/// <summary>Nothing is left of a dataset after the class-config / class-min filters; the message gives the per-class counts.</summary>
public sealed class NoImagesAfterFiltersException(string message) : InvalidOperationException(message);

/// <summary>What running one shard delivery did.</summary>
/// <param name="Counted">This delivery marked the shard done (false for a duplicate or a shard of a finished job).</param>
/// <param name="Job">The job record after this delivery.</param>
/// <param name="Finished">This delivery completed the job (merged every shard and stored the result).</param>
public sealed record ShardOutcome(bool Counted, NormStatsJobRecord? Job, bool Finished);

/// <summary>
/// A norm-stats job from request to result, over blob storage only, so any number of processes can share the work:
/// <see cref="StartAsync"/> plans the job (or answers from the cache); <see cref="RunShardAsync"/> computes and stores one
/// shard, counts it once in the job record, and merges everything when the last shard is in. Which process runs a
/// shard, how often it is delivered and in which order shards finish do not change the answer.
/// </summary>
public sealed class NormStatsJobCoordinator
{
    private const int DownloadParallelism = 8;
    private readonly NormStatsJobStore _jobs;
    private readonly IDatasetSource _datasets;
    private readonly int _workers;

    /// <param name="jobs">The job/shard/cache store.</param>
    /// <param name="datasets">Where the datasets are read (see <see cref="IDatasetSource"/>).</param>
    /// <param name="workers">Threads per shard; 0 = all processors.</param>
    /// <param name="maxShardAttempts">
    /// Deliveries of one shard that may start without finishing before the job fails (a shard that kills or hangs its
    /// worker is redelivered by the broker; without a cap it would take down every worker in turn, forever).
    /// </param>
    public NormStatsJobCoordinator(NormStatsJobStore jobs, IDatasetSource datasets, int workers = 0, int maxShardAttempts = 3)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        ArgumentNullException.ThrowIfNull(datasets);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxShardAttempts, 1);
        _jobs = jobs;
        _datasets = datasets;
        _workers = workers;
        _maxShardAttempts = maxShardAttempts;
    }

    private readonly int _maxShardAttempts;

    public NormStatsJobStore Jobs => _jobs;

    /// <summary>
    /// Plans a job: resolves the dataset and its filters, and either records an already finished job from the cache
    /// (state Succeeded, <c>Cached</c>) or records a queued job with its shards, which the caller then sends out.
    /// With <paramref name="jobId"/> set and such a job already stored (a repeated request), that job is returned.
    /// </summary>
    /// <returns>The job, and whether this call created it.</returns>
    /// <exception cref="ArgumentException">Invalid options or dataset name.</exception>
    /// <exception cref="KeyNotFoundException">No such dataset.</exception>
    /// <exception cref="NoImagesAfterFiltersException">No image passes the filters.</exception>
    /// <param name="deadline">When the job fails if it has not finished (the reconciler enforces it); null for none.</param>
    public async Task<(NormStatsJobRecord Job, bool Created)> StartAsync(string dataset, NormStatsJobOptions options, string? jobId = null,
        CancellationToken cancellationToken = default, DateTimeOffset? deadline = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options = options.WithDefaults();
        var datasetOptions = options.ToDatasetOptions();
        var optionsHash = options.CacheHash();
        jobId ??= Guid.NewGuid().ToString("N");
        if (!NormStatsJobStore.IsValidId(jobId))
            throw new ArgumentException($"Job id '{jobId}' is not 32 lowercase hex digits.", nameof(jobId));
        if (await _jobs.GetAsync(jobId, cancellationToken) is { } existing)
            return (existing, false);

        var store = await _datasets.OpenAsync(dataset, cancellationToken);
        var manifest = await store.GetManifestAsync(dataset, cancellationToken);
        if (await _jobs.GetCachedAsync(manifest.Fingerprint, optionsHash, cancellationToken) is { } cached)
        {
            var now = DateTimeOffset.UtcNow;
            var answered = new NormStatsJobRecord
            {
                JobId = jobId,
                Dataset = dataset,
                DatasetFingerprint = manifest.Fingerprint,
                Options = options,
                ImagesTotal = checked((int)cached.Images + cached.CorruptImages.Count),
                Cached = true,
                Result = cached,
            }.Succeed(now);
            return await CreateOrGetAsync(answered, [], cancellationToken);
        }

        var byPath = manifest.Files.ToDictionary(f => $"{f.Class}/{f.File}", StringComparer.Ordinal);
        var perClass = manifest.Files.GroupBy(f => f.Class, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => (IReadOnlyList<string>)[.. g.Select(f => $"{f.Class}/{f.File}")], StringComparer.Ordinal);
        var spec = DatasetSpec.FromImagesPerClass(dataset, perClass, datasetOptions);
        if (spec.Images.Count == 0)
            throw new NoImagesAfterFiltersException(DescribeEmpty(dataset, manifest, spec, datasetOptions));
        var images = spec.Images.Select(i => JobImage.Of(byPath[i.Path])).ToList();

        var shardSize = options.EffectiveShardSize;
        var shardCount = (images.Count + shardSize - 1) / shardSize;
        if (shardCount > Limits.MaxShards)
            throw new ArgumentException(
                $"shard_size {options.ShardSize} splits the {images.Count} images into {shardCount} shards; " +
                $"the limit is {Limits.MaxShards} (limit {nameof(Limits.MaxShards)}): " +
                $"use shard_size {(images.Count + Limits.MaxShards - 1) / Limits.MaxShards} or more, or 0 for the default.",
                nameof(options));
        var shards = new List<ShardStatus>();
        for (int start = 0, shard = 0; start < images.Count; start += shardSize, shard++)
            shards.Add(new ShardStatus { Shard = shard, Start = start, Count = Math.Min(shardSize, images.Count - start) });
        var job = new NormStatsJobRecord
        {
            JobId = jobId,
            Dataset = dataset,
            DatasetFingerprint = manifest.Fingerprint,
            Options = options,
            ImagesTotal = images.Count,
            Shards = shards,
        }.WithDeadline(deadline, _jobs.Time.GetUtcNow());
        return await CreateOrGetAsync(job, images, cancellationToken);
    }

    private async Task<(NormStatsJobRecord, bool)> CreateOrGetAsync(NormStatsJobRecord job, IReadOnlyList<JobImage> images,
        CancellationToken cancellationToken)
    {
        try
        {
            return (await _jobs.CreateAsync(job, images, cancellationToken), true);
        }
        catch (IfcbException e) when (e.Kind == ErrorKind.AlreadyExists)
        {
            // The same request, delivered twice at once: the first one's job stands.
            return (await _jobs.GetAsync(job.JobId, cancellationToken)
                ?? throw new InvalidOperationException($"Job {job.JobId} exists and vanished."), false);
        }
    }

    private static string DescribeEmpty(string dataset, DatasetManifest manifest, DatasetSpec spec, DatasetOptions options)
    {
        var counts = string.Join(", ",
            manifest.CountPerClass.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => $"{c.Key}={c.Value}"));
        var parts = new List<string> { $"Dataset '{dataset}' has no images left after the filters (class-min {options.EffectiveClassMin}" +
            (options.ClassConfig is { } config ? $", class-config column \"{config.Column}\"" : "") + $"). Images per class: {counts}." };
        if (spec.Report.DroppedTooFewImages.Count > 0)
            parts.Add($"Fewer than class-min: {string.Join(", ", spec.Report.DroppedTooFewImages.Select(d => $"{d.Class}={d.Count}"))}.");
        if (spec.Report.SkippedByConfig.Count > 0)
            parts.Add($"Skipped by the class-config: {string.Join(", ", spec.Report.SkippedByConfig)}.");
        if (spec.Report.SourceClassesMissingFromConfig.Count > 0)
            parts.Add($"Not listed in the class-config: {string.Join(", ", spec.Report.SourceClassesMissingFromConfig)}.");
        parts.Add("Lower class-min or change the class-config.");
        return string.Join(" ", parts);
    }

    /// <summary>
    /// Runs one delivery of a shard: computes and stores its partial unless one is stored already, marks it done in the
    /// job record (once), and, if it was the last, merges the partials in shard order and stores the result and the
    /// cache entry. Safe to call any number of times for the same shard, from any process.
    /// </summary>
    /// <exception cref="InvalidOperationException">The dataset changed or vanished since the job was planned.</exception>
    /// <exception cref="InvalidDataException">No image of the whole job could be read.</exception>
    public async Task<ShardOutcome> RunShardAsync(string jobId, int shard, string worker, CancellationToken cancellationToken = default)
    {
        var job = await _jobs.GetAsync(jobId, cancellationToken);
        if (job is null || job.IsTerminal || shard < 0 || shard >= job.Shards.Count)
            return new ShardOutcome(false, job, false);

        var stored = await _jobs.GetShardAsync(jobId, shard, cancellationToken);
        if (stored is null)
        {
            if (job.Shards[shard].State != ShardState.Done)
            {
                (job, _) = await _jobs.UpdateAsync(jobId, j =>
                {
                    if (j.IsTerminal)
                        return null;
                    var now = _jobs.Time.GetUtcNow();
                    var status = j.Shards[shard];
                    // Every earlier start of this shard ended without storing a partial: its worker died or hung.
                    if (status.State != ShardState.Done && status.Attempts >= _maxShardAttempts)
                    {
                        var workers = string.Join(", ", status.Workers.Distinct());
                        return j.Fail(string.Create(CultureInfo.InvariantCulture,
                            $"Shard {shard} (images {status.Start}-{status.Start + status.Count - 1}) stopped its worker " +
                            $"{status.Attempts} times ({workers}); the job is failed instead of retried. " +
                            $"Check those workers' logs, then remove the offending images or start again."),
                            now);
                    }
                    return j.Begin(now) with
                    {
                        StartedAt = j.StartedAt ?? now,
                        Shards = Replace(j.Shards, shard, s => s.State == ShardState.Done ? s : s with
                        {
                            State = ShardState.Running,
                            Worker = worker,
                            Attempts = s.Attempts + 1,
                            Workers = [.. s.Workers, worker],
                        }),
                    };
                }, cancellationToken);
                if (job.IsTerminal)
                    return new ShardOutcome(false, job, job.State == JobState.Failed);
            }
            var partials = await ComputeShardAsync(job, job.Shards[shard], cancellationToken);
            (stored, _) = await _jobs.StoreShardAsync(jobId, ShardPartialDocument.From(shard, worker, partials), cancellationToken);
        }

        var document = stored;
        var (updated, counted) = await _jobs.UpdateAsync(jobId,
            j => j.IsTerminal || j.Shards[shard].State == ShardState.Done ? null : j.Begin(_jobs.Time.GetUtcNow()) with
            {
                StartedAt = j.StartedAt ?? _jobs.Time.GetUtcNow(),
                Shards = Replace(j.Shards, shard, s => s with
                {
                    State = ShardState.Done,
                    Worker = document.Worker,
                    Images = document.Partials.Sum(p => p.Images),
                    Failed = document.Partials.Sum(p => p.Failures.Count),
                }),
            }, cancellationToken);
        if (updated.IsTerminal || updated.ShardsDone < updated.Shards.Count)
            return new ShardOutcome(counted, updated, false);
        var (finished, written) = await FinishAsync(updated, cancellationToken);
        return new ShardOutcome(counted, finished, written);
    }

    /// <summary>
    /// One reconciler sweep over the active norm-stats jobs: a job past its deadline, or with no shard finished for
    /// <paramref name="giveUpAfter"/>, fails with that reason; a job whose shards were never sent (the broker was down
    /// when it was planned) or that made no progress for <paramref name="resendAfter"/> has its unfinished shards sent
    /// again (a duplicate is computed twice at worst and counted once); final jobs leave the list.
    /// </summary>
    /// <param name="send">Sends shard commands; the job's record says which were sent.</param>
    /// <returns>The jobs it failed (to announce) and how many jobs it sent shards for.</returns>
    public async Task<(List<NormStatsJobRecord> Failed, int Resent)> ReconcileAsync(
        Func<NormStatsJobRecord, IReadOnlyList<ShardStatus>, CancellationToken, Task> send, TimeSpan resendAfter, TimeSpan giveUpAfter,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(send);
        var failed = new List<NormStatsJobRecord>();
        var resent = 0;
        foreach (var (jobId, _) in await _jobs.ListActiveAsync(cancellationToken))
        {
            var job = await _jobs.GetAsync(jobId, cancellationToken);
            if (job is null || job.IsTerminal)
            {
                await _jobs.RetireAsync(jobId, cancellationToken);
                continue;
            }
            var now = _jobs.Time.GetUtcNow();
            var idle = now - job.UpdatedAt;
            var reason = job.DeadlinePassed(now) ? $"its deadline {job.Deadline:O} passed"
                : idle >= giveUpAfter
                    ? string.Create(CultureInfo.InvariantCulture,
                        $"no shard finished for {idle.TotalMinutes:0} minutes (workers or storage unavailable)")
                : null;
            if (reason is not null)
            {
                var (ended, changed) = await FailAsync(jobId, $"Norm-stats job stopped: {reason}.", cancellationToken);
                if (changed)
                    failed.Add(ended);
                continue;
            }
            if ((job.DispatchedAt is null && idle >= TimeSpan.FromSeconds(15)) || idle >= resendAfter)
            {
                await send(job, [.. job.Shards.Where(s => s.State != ShardState.Done)], cancellationToken);
                await _jobs.UpdateAsync(jobId, j => j.IsTerminal ? null : j.Dispatched(_jobs.Time.GetUtcNow()), cancellationToken);
                resent++;
            }
        }
        return (failed, resent);
    }

    /// <summary>Marks a job failed (unless it has ended already). Returns the record and whether this call ended it.</summary>
    public Task<(NormStatsJobRecord Job, bool Written)> FailAsync(string jobId, string reason,
        CancellationToken cancellationToken = default) =>
        _jobs.UpdateAsync(jobId, j => j.IsTerminal ? null : j.Fail(reason, _jobs.Time.GetUtcNow()), cancellationToken);

    private async Task<(NormStatsJobRecord, bool)> FinishAsync(NormStatsJobRecord job, CancellationToken cancellationToken)
    {
        var partials = new List<NormStatsPartial>();
        foreach (var shard in job.Shards)
        {
            var document = await _jobs.GetShardAsync(job.JobId, shard.Shard, cancellationToken)
                ?? throw new InvalidOperationException($"Job {job.JobId}: shard {shard.Shard} is marked done but its partial is missing.");
            partials.AddRange(document.ToPartials());
        }
        NormStatsResult result;
        try
        {
            // Shard order, hence image order: the same merge whichever worker finished first.
            result = job.Options.Estimator == NormStatsEstimator.Neuston
                ? NormStatsCalculator.FromNeustonBatches(partials)
                : NormStatsCalculator.ToResult(partials.Aggregate((a, b) => a.Merge(b)));
        }
        catch (InvalidDataException e)
        {
            return await FailAsync(job.JobId, $"Dataset '{job.Dataset}': {e.Message}", cancellationToken);
        }
        var outcome = new NormStatsOutcome
        {
            Mean = result.Mean,
            Std = result.Std,
            Images = result.ImageCount,
            PixelsPerChannel = result.PixelsPerChannel,
            Estimator = result.Estimator,
            Resize = job.Options.Resize,
            CorruptImages = [.. result.Failures.Select(f => new CorruptImage(f.Path, f.Reason))],
            DatasetFingerprint = job.DatasetFingerprint,
            OptionsKey = job.Options.CanonicalKey(),
            ComputedByJob = job.JobId,
        };
        await _jobs.PutCachedAsync(job.Options.CacheHash(), outcome, cancellationToken);
        return await _jobs.UpdateAsync(job.JobId, j => j.IsTerminal ? null : (j with { Result = outcome }).Succeed(_jobs.Time.GetUtcNow()),
            cancellationToken);
    }

    /// <summary>
    /// Computes one shard's partials while its images stream in (<see cref="BlobDatasetStore.StreamImages"/>): decoding
    /// starts with the first image to arrive. A storage error fails the shard, never counts as a corrupt image.
    /// </summary>
    private async Task<IReadOnlyList<NormStatsPartial>> ComputeShardAsync(NormStatsJobRecord job, ShardStatus shard,
        CancellationToken cancellationToken)
    {
        var all = await ImagesOfAsync(job.JobId, cancellationToken);
        var slice = all.Skip(shard.Start).Take(shard.Count).ToList();
        var store = await _datasets.OpenAsync(job.Dataset, cancellationToken);
        var streamed = store.StreamImages(job.Dataset, [.. slice.Select(i => i.ToDatasetFile())], DownloadParallelism, cancellationToken);
        var images = slice.Select(i => new LabelledImage(i.DatasetPath, 0)).ToList();
        var calculator = new NormStatsCalculator(job.Options.Resize, streamed, _workers);
        try
        {
            var partials = await Task.Run(() => job.Options.Estimator == NormStatsEstimator.Neuston
                ? calculator.ComputeBatches(images, 0, images.Count, NormStatsCalculator.NeustonBatchSize, null, cancellationToken)
                : [calculator.ComputePartial(images, 0, images.Count, null, cancellationToken)], cancellationToken);
            await streamed.Completion;
            return partials;
        }
        catch (Exception)
        {
            var fault = await FaultOfAsync(streamed);
            if (fault is null)
                throw;
            throw fault switch
            {
                KeyNotFoundException e => new InvalidOperationException(
                    $"Dataset '{job.Dataset}' lost images after the job was started (deleted or re-uploaded; {e.Message}); " +
                    "start the computation again.", e),
                InvalidDataException e => new InvalidOperationException(
                    $"Dataset '{job.Dataset}' changed after the job was started ({e.Message}); start the computation again.", e),
                _ => fault,
            };
        }
    }

    /// <summary>
    /// A job's image list, read once per process for its recent jobs: it never changes, and a worker computes many shards
    /// of one job (re-reading the list, ~150 bytes an image, for every shard cost as much as computing a small one).
    /// </summary>
    private async Task<IReadOnlyList<JobImage>> ImagesOfAsync(string jobId, CancellationToken cancellationToken)
    {
        lock (_recentImages)
        {
            var hit = _recentImages.Find(r => r.JobId == jobId);
            if (hit.Images is not null)
                return hit.Images;
        }
        var images = await _jobs.GetImagesAsync(jobId, cancellationToken);
        lock (_recentImages)
        {
            _recentImages.RemoveAll(r => r.JobId == jobId);
            _recentImages.Add((jobId, images));
            if (_recentImages.Count > RecentImageLists)
                _recentImages.RemoveAt(0);
        }
        return images;
    }

    private const int RecentImageLists = 4;
    private readonly List<(string JobId, IReadOnlyList<JobImage> Images)> _recentImages = [];

    // The download error behind a failed computation; null when the downloads did not fail.
    private static async Task<Exception?> FaultOfAsync(StreamedImages streamed)
    {
        await streamed.Completion.ContinueWith(_ => { }, TaskScheduler.Default);
        return streamed.Completion.IsFaulted ? streamed.Completion.Exception!.InnerException : null;
    }

    private static List<ShardStatus> Replace(List<ShardStatus> shards, int index, Func<ShardStatus, ShardStatus> change) =>
        [.. shards.Select((s, i) => i == index ? change(s) : s)];
}
