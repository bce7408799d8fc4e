using System.Text.Json;
using System.Text.Json.Serialization;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace Ifcb.NormStats.Engine.Jobs;

/// <summary>
/// Norm-stats jobs, shard partials and cached results in one blob container:
/// <list type="bullet">
/// <item><c>jobs/{id}/job.json</c>: the job record, written with ETag optimistic concurrency;</item>
/// <item><c>jobs/{id}/images.json</c>: the job's image list (written once, before any shard is sent);</item>
/// <item><c>jobs/{id}/shards/{shard}.json</c>: a shard's partial, created at most once (If-None-Match: *);</item>
/// <item><c>results/{fingerprint}/{options hash}.json</c>: the cached result for a dataset content and options.</item>
/// </list>
/// </summary>
public sealed class NormStatsJobStore(BlobContainerClient container)
{
    public const string ContainerName = "normstats";
    private const string JobsPrefix = "jobs/";
    private const string ResultsPrefix = "results/";

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    public BlobContainerClient Container => container;

    public static string RecordBlob(string jobId) => $"{JobsPrefix}{jobId}/job.json";

    public static string ImagesBlob(string jobId) => $"{JobsPrefix}{jobId}/images.json";

    public static string ShardBlob(string jobId, int shard) => $"{JobsPrefix}{jobId}/shards/{shard:D6}.json";

    public static string ResultBlob(string fingerprint, string optionsHash) => $"{ResultsPrefix}{fingerprint}/{optionsHash}.json";

    public Task EnsureContainerAsync(CancellationToken cancellationToken) =>
        container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);

    /// <summary>Stores a new job with its image list (the list first, so no record exists without one).</summary>
    /// <exception cref="RequestFailedException">Status 409: a job with this id exists.</exception>
    public async Task CreateAsync(NormStatsJobRecord job, IReadOnlyList<JobImage> images, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        await container.GetBlobClient(ImagesBlob(job.JobId)).UploadAsync(
            new BinaryData(JsonSerializer.SerializeToUtf8Bytes(images, Json)), overwrite: true, cancellationToken);
        await container.GetBlobClient(RecordBlob(job.JobId)).UploadAsync(
            new BinaryData(JsonSerializer.SerializeToUtf8Bytes(job, Json)),
            new BlobUploadOptions { Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All } }, cancellationToken);
    }

    /// <summary>The job, or null if there is none with that id.</summary>
    public async Task<NormStatsJobRecord?> GetAsync(string jobId, CancellationToken cancellationToken) =>
        (await GetWithETagAsync(jobId, cancellationToken))?.Job;

    /// <summary>The job's image list.</summary>
    /// <exception cref="KeyNotFoundException">No such job.</exception>
    public async Task<IReadOnlyList<JobImage>> GetImagesAsync(string jobId, CancellationToken cancellationToken) =>
        await ReadAsync<List<JobImage>>(ImagesBlob(jobId), cancellationToken)
        ?? throw new KeyNotFoundException($"Norm-stats job '{jobId}' has no image list.");

    /// <summary>
    /// Applies <paramref name="change"/> to the current record and writes it if the record did not change meanwhile
    /// (If-Match); on a conflict it re-reads and re-applies. <paramref name="change"/> returning null means "no write".
    /// Returns the record as stored and whether this call wrote it.
    /// </summary>
    /// <exception cref="KeyNotFoundException">No such job.</exception>
    public async Task<(NormStatsJobRecord Job, bool Written)> UpdateAsync(string jobId, Func<NormStatsJobRecord, NormStatsJobRecord?> change,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(change);
        for (var attempt = 0; ; attempt++)
        {
            var current = await GetWithETagAsync(jobId, cancellationToken)
                ?? throw new KeyNotFoundException($"No norm-stats job '{jobId}'.");
            var updated = change(current.Job);
            if (updated is null)
                return (current.Job, false);
            updated = updated with { UpdatedAt = DateTimeOffset.UtcNow };
            try
            {
                await container.GetBlobClient(RecordBlob(jobId)).UploadAsync(
                    new BinaryData(JsonSerializer.SerializeToUtf8Bytes(updated, Json)),
                    new BlobUploadOptions { Conditions = new BlobRequestConditions { IfMatch = current.ETag } }, cancellationToken);
                return (updated, true);
            }
            catch (RequestFailedException e) when (e.Status is 412 or 409 && attempt < 50)
            {
                await Task.Delay(Random.Shared.Next(5, 50), cancellationToken);
            }
        }
    }

    /// <summary>
    /// Stores a shard's partial unless one is stored already (If-None-Match: *), so a redelivered or duplicated shard
    /// is counted once: the first stored partial wins. Returns the stored partial and whether this call stored it.
    /// </summary>
    public async Task<(ShardPartialDocument Stored, bool Created)> StoreShardAsync(string jobId, ShardPartialDocument partial, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(partial);
        try
        {
            await container.GetBlobClient(ShardBlob(jobId, partial.Shard)).UploadAsync(
                new BinaryData(JsonSerializer.SerializeToUtf8Bytes(partial, Json)),
                new BlobUploadOptions { Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All } }, cancellationToken);
            return (partial, true);
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            var existing = await GetShardAsync(jobId, partial.Shard, cancellationToken)
                ?? throw new InvalidOperationException($"Shard {partial.Shard} of job {jobId} exists and vanished; the container is being modified outside the service.");
            return (existing, false);
        }
    }

    /// <summary>A stored shard partial, or null if the shard has not been stored.</summary>
    public Task<ShardPartialDocument?> GetShardAsync(string jobId, int shard, CancellationToken cancellationToken) =>
        ReadAsync<ShardPartialDocument>(ShardBlob(jobId, shard), cancellationToken);

    /// <summary>The cached result for a dataset fingerprint and options hash, or null.</summary>
    public Task<NormStatsOutcome?> GetCachedAsync(string fingerprint, string optionsHash, CancellationToken cancellationToken) =>
        IsHex(fingerprint, 64) && IsHex(optionsHash, 64)
            ? ReadAsync<NormStatsOutcome>(ResultBlob(fingerprint, optionsHash), cancellationToken)
            : Task.FromResult<NormStatsOutcome?>(null);

    /// <summary>Stores a result in the cache. Results are deterministic, so a second write of the same key changes nothing that matters.</summary>
    public async Task PutCachedAsync(string optionsHash, NormStatsOutcome outcome, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        await container.GetBlobClient(ResultBlob(outcome.DatasetFingerprint, optionsHash)).UploadAsync(
            new BinaryData(JsonSerializer.SerializeToUtf8Bytes(outcome, Json)), overwrite: true, cancellationToken);
    }

    /// <summary>Job ids are ours (GUID "N" format); anything else cannot name a job and must not reach a blob path.</summary>
    public static bool IsValidId(string? jobId) => IsHex(jobId, 32);

    private static bool IsHex(string? s, int length) => s is not null && s.Length == length && s.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');

    private async Task<(NormStatsJobRecord Job, ETag ETag)?> GetWithETagAsync(string jobId, CancellationToken cancellationToken)
    {
        if (!IsValidId(jobId))
            return null;
        try
        {
            var content = await container.GetBlobClient(RecordBlob(jobId)).DownloadContentAsync(cancellationToken);
            var job = JsonSerializer.Deserialize<NormStatsJobRecord>(content.Value.Content.ToMemory().Span, Json)
                ?? throw new InvalidDataException($"Job record {RecordBlob(jobId)} is empty.");
            return (job, content.Value.Details.ETag);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    private async Task<T?> ReadAsync<T>(string blobName, CancellationToken cancellationToken) where T : class
    {
        try
        {
            var content = await container.GetBlobClient(blobName).DownloadContentAsync(cancellationToken);
            return JsonSerializer.Deserialize<T>(content.Value.Content.ToMemory().Span, Json)
                ?? throw new InvalidDataException($"Blob {container.Name}/{blobName} is empty.");
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }
}
