using System.Text.Json;
using System.Text.Json.Serialization;
using Azure.Storage.Blobs;
using Ifcb.Platform.Jobs;

namespace Ifcb.NormStats.Engine.Jobs;

/// <summary>
/// Norm-stats jobs, shard partials and cached results in one blob container:
/// <list type="bullet">
/// <item><c>jobs/{id}/job.json</c>: the job record (the kernel's <see cref="JobStore{T}"/>, ETag-guarded);</item>
/// <item><c>jobs/{id}/images.json</c>: the job's image list (written once, before the record);</item>
/// <item><c>jobs/{id}/shards/{shard}.json</c>: a shard's partial, created at most once (If-None-Match: *);</item>
/// <item><c>results/{fingerprint}/{options hash}.json</c>: the cached result for a dataset content and options.</item>
/// </list>
/// </summary>
public sealed class NormStatsJobStore : JobStore<NormStatsJobRecord>
{
    public const string ContainerName = "normstats";
    private const string JobsPrefix = "jobs/";
    private const string ResultsPrefix = "results/";

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    public NormStatsJobStore(BlobContainerClient container, TimeProvider? time = null)
        : base(container, JobsPrefix, Json, time)
    {
    }

    public static string ImagesBlob(string jobId) => $"{JobsPrefix}{jobId}/images.json";

    public static string ShardBlob(string jobId, int shard) => $"{JobsPrefix}{jobId}/shards/{shard:D6}.json";

    public static string ResultBlob(string fingerprint, string optionsHash) => $"{ResultsPrefix}{fingerprint}/{optionsHash}.json";

    /// <summary>Stores a new job with its image list (the list first, so no record exists without one).</summary>
    /// <exception cref="Ifcb.Platform.IfcbException">AlreadyExists: a job with this id exists.</exception>
    public async Task<NormStatsJobRecord> CreateAsync(NormStatsJobRecord job, IReadOnlyList<JobImage> images,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        await Documents.PutAsync(ImagesBlob(job.JobId), images, cancellationToken);
        return await CreateAsync(job, cancellationToken);
    }

    /// <summary>The job's image list.</summary>
    /// <exception cref="KeyNotFoundException">No such job.</exception>
    public async Task<IReadOnlyList<JobImage>> GetImagesAsync(string jobId, CancellationToken cancellationToken) =>
        (await Documents.ReadAsync<List<JobImage>>(ImagesBlob(jobId), cancellationToken))?.Value
        ?? throw new KeyNotFoundException($"Norm-stats job '{jobId}' has no image list.");

    /// <summary>
    /// Stores a shard's partial unless one is stored already (If-None-Match: *), so a redelivered or duplicated shard
    /// is counted once: the first stored partial wins. Returns the stored partial and whether this call stored it.
    /// </summary>
    public async Task<(ShardPartialDocument Stored, bool Created)> StoreShardAsync(string jobId, ShardPartialDocument partial,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(partial);
        if (await Documents.TryCreateAsync(ShardBlob(jobId, partial.Shard), partial, cancellationToken) is not null)
            return (partial, true);
        var existing = await GetShardAsync(jobId, partial.Shard, cancellationToken)
            ?? throw new InvalidOperationException(
                $"Shard {partial.Shard} of job {jobId} exists and vanished; the container is being modified outside the service.");
        return (existing, false);
    }

    /// <summary>A stored shard partial, or null if the shard has not been stored.</summary>
    public async Task<ShardPartialDocument?> GetShardAsync(string jobId, int shard, CancellationToken cancellationToken) =>
        (await Documents.ReadAsync<ShardPartialDocument>(ShardBlob(jobId, shard), cancellationToken))?.Value;

    /// <summary>The cached result for a dataset fingerprint and options hash, or null.</summary>
    public async Task<NormStatsOutcome?> GetCachedAsync(string fingerprint, string optionsHash, CancellationToken cancellationToken) =>
        IsHex(fingerprint, 64) && IsHex(optionsHash, 64)
            ? (await Documents.ReadAsync<NormStatsOutcome>(ResultBlob(fingerprint, optionsHash), cancellationToken))?.Value
            : null;

    /// <summary>
    /// Stores a result in the cache. Results are deterministic, so a second write of the same key changes nothing that matters.
    /// </summary>
    public Task PutCachedAsync(string optionsHash, NormStatsOutcome outcome, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        return Documents.PutAsync(ResultBlob(outcome.DatasetFingerprint, optionsHash), outcome, cancellationToken);
    }

    private static bool IsHex(string? s, int length) =>
        s is not null && s.Length == length && s.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');
}
