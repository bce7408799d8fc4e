using System.Collections.Concurrent;
using System.Security.Cryptography;
using Azure;
using Azure.Storage.Blobs;
using Ifcb.Data.Datasets;
using Ifcb.Data.Loading;

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
    private readonly BlobContainerClient _datasetContainer;
    private readonly BlobDatasetStore _datasets;
    private readonly int _workers;

    /// <param name="jobs">The job/shard/cache store.</param>
    /// <param name="datasetContainer">The container the datasets are stored in (see <see cref="BlobDatasetStore"/>).</param>
    /// <param name="workers">Threads per shard; 0 = all processors.</param>
    public NormStatsJobCoordinator(NormStatsJobStore jobs, BlobContainerClient datasetContainer, int workers = 0)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        ArgumentNullException.ThrowIfNull(datasetContainer);
        _jobs = jobs;
        _datasetContainer = datasetContainer;
        _datasets = new BlobDatasetStore(datasetContainer);
        _workers = workers;
    }

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
    public async Task<(NormStatsJobRecord Job, bool Created)> StartAsync(string dataset, NormStatsJobOptions options, string? jobId = null,
        CancellationToken cancellationToken = default)
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

        var manifest = await _datasets.GetManifestAsync(dataset, cancellationToken);
        if (await _jobs.GetCachedAsync(manifest.Fingerprint, optionsHash, cancellationToken) is { } cached)
        {
            var now = DateTimeOffset.UtcNow;
            var answered = new NormStatsJobRecord
            {
                JobId = jobId,
                Dataset = dataset,
                DatasetFingerprint = manifest.Fingerprint,
                Options = options,
                State = NormStatsJobState.Succeeded,
                ImagesTotal = checked((int)cached.Images + cached.CorruptImages.Count),
                Cached = true,
                Result = cached,
                CompletedAt = now,
            };
            return await CreateOrGetAsync(answered, [], cancellationToken);
        }

        var byPath = manifest.Files.ToDictionary(f => $"{f.Class}/{f.File}", StringComparer.Ordinal);
        var perClass = manifest.Files.GroupBy(f => f.Class, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => (IReadOnlyList<string>)[.. g.Select(f => $"{f.Class}/{f.File}")], StringComparer.Ordinal);
        var spec = DatasetSpec.FromImagesPerClass(dataset, perClass, datasetOptions);
        if (spec.Images.Count == 0)
            throw new NoImagesAfterFiltersException(DescribeEmpty(dataset, manifest, spec, datasetOptions));
        var images = spec.Images.Select(i => byPath[i.Path]).Select(f => new JobImage(f.Class, f.File, f.Sha256)).ToList();

        var shardSize = options.EffectiveShardSize;
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
        };
        return await CreateOrGetAsync(job, images, cancellationToken);
    }

    private async Task<(NormStatsJobRecord, bool)> CreateOrGetAsync(NormStatsJobRecord job, IReadOnlyList<JobImage> images, CancellationToken cancellationToken)
    {
        try
        {
            await _jobs.CreateAsync(job, images, cancellationToken);
            return (job, true);
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            // The same request, delivered twice at once: the first one's job stands.
            return (await _jobs.GetAsync(job.JobId, cancellationToken) ?? throw new InvalidOperationException($"Job {job.JobId} exists and vanished."), false);
        }
    }

    private static string DescribeEmpty(string dataset, DatasetManifest manifest, DatasetSpec spec, DatasetOptions options)
    {
        var counts = string.Join(", ", manifest.CountPerClass.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => $"{c.Key}={c.Value}"));
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
                (job, _) = await _jobs.UpdateAsync(jobId, j => j.IsTerminal ? null : j with
                {
                    State = NormStatsJobState.Running,
                    StartedAt = j.StartedAt ?? DateTimeOffset.UtcNow,
                    Shards = Replace(j.Shards, shard, s => s.State == ShardState.Done ? s : s with { State = ShardState.Running, Worker = worker, Attempts = s.Attempts + 1 }),
                }, cancellationToken);
                if (job.IsTerminal)
                    return new ShardOutcome(false, job, false);
            }
            var partials = await ComputeShardAsync(job, job.Shards[shard], cancellationToken);
            (stored, _) = await _jobs.StoreShardAsync(jobId, ShardPartialDocument.From(shard, worker, partials), cancellationToken);
        }

        var document = stored;
        var (updated, counted) = await _jobs.UpdateAsync(jobId, j => j.IsTerminal || j.Shards[shard].State == ShardState.Done ? null : j with
        {
            State = NormStatsJobState.Running,
            StartedAt = j.StartedAt ?? DateTimeOffset.UtcNow,
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

    /// <summary>Marks a job failed (unless it has ended already). Returns the record and whether this call ended it.</summary>
    public Task<(NormStatsJobRecord Job, bool Written)> FailAsync(string jobId, string reason, CancellationToken cancellationToken = default) =>
        _jobs.UpdateAsync(jobId, j => j.IsTerminal ? null : j with { State = NormStatsJobState.Failed, Error = reason, CompletedAt = DateTimeOffset.UtcNow },
            cancellationToken);

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
            ImgNorm = result.ImgNormArgument,
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
        return await _jobs.UpdateAsync(job.JobId, j => j.IsTerminal ? null : j with
        {
            State = NormStatsJobState.Succeeded,
            Result = outcome,
            CompletedAt = DateTimeOffset.UtcNow,
        }, cancellationToken);
    }

    private async Task<IReadOnlyList<NormStatsPartial>> ComputeShardAsync(NormStatsJobRecord job, ShardStatus shard, CancellationToken cancellationToken)
    {
        var all = await _jobs.GetImagesAsync(job.JobId, cancellationToken);
        var slice = all.Skip(shard.Start).Take(shard.Count).ToList();
        var encoded = new ConcurrentDictionary<string, byte[]>(StringComparer.Ordinal);
        await Parallel.ForEachAsync(slice, new ParallelOptions { MaxDegreeOfParallelism = DownloadParallelism, CancellationToken = cancellationToken },
            async (image, token) => encoded[image.DatasetPath] = await DownloadVerifiedAsync(job.Dataset, image, token));
        var images = slice.Select(i => new LabelledImage(i.DatasetPath, 0)).ToList();
        var calculator = new NormStatsCalculator(job.Options.Resize, new InMemoryImageSource(encoded), _workers);
        return job.Options.Estimator == NormStatsEstimator.Neuston
            ? calculator.ComputeBatches(images, 0, images.Count, NormStatsCalculator.NeustonBatchSize, null, cancellationToken)
            : [calculator.ComputePartial(images, 0, images.Count, null, cancellationToken)];
    }

    private async Task<byte[]> DownloadVerifiedAsync(string dataset, JobImage image, CancellationToken cancellationToken)
    {
        try
        {
            return await _datasets.DownloadImageAsync(dataset, image.Class, image.File, image.Sha256, cancellationToken);
        }
        catch (KeyNotFoundException e)
        {
            throw new InvalidOperationException(
                $"Dataset '{dataset}' lost {image.DatasetPath} after the job was started (deleted or re-uploaded); start the computation again.", e);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidOperationException(
                $"Dataset '{dataset}' changed after the job was started ({image.DatasetPath} has new content); start the computation again.", e);
        }
    }

    private static List<ShardStatus> Replace(List<ShardStatus> shards, int index, Func<ShardStatus, ShardStatus> change) =>
        [.. shards.Select((s, i) => i == index ? change(s) : s)];
}
