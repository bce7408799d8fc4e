using System.Runtime.CompilerServices;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace Ifcb.Training.Engine.Jobs;

/// <summary>What every stored job record has, so one store can keep training jobs and run jobs alike.</summary>
public interface IJobRecord
{
    string JobId { get; }
    DateTimeOffset CreatedAt { get; }
    DateTimeOffset UpdatedAt { get; }
    bool IsTerminal { get; }

    /// <summary>The same record with a new UpdatedAt (records are immutable).</summary>
    IJobRecord Touched(DateTimeOffset at);
}

/// <summary>
/// Jobs in blob storage: <c>{prefix}{id}/job.json</c> (the record, written with ETag optimistic concurrency) and
/// <c>{prefix}{id}/artifacts/{name}</c> (outputs and resume state). Survives restarts of every process.
/// </summary>
public class JobStore<TRecord>(BlobContainerClient container, string prefix) where TRecord : class, IJobRecord
{
    public BlobContainerClient Container => container;

    public string RecordBlobName(string jobId) => $"{prefix}{jobId}/job.json";

    public string ArtifactBlobName(string jobId, string name) => $"{prefix}{jobId}/artifacts/{name}";

    public Task EnsureContainerAsync(CancellationToken cancellationToken) =>
        container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);

    /// <summary>Stores a new job; fails if the id exists.</summary>
    public async Task CreateAsync(TRecord job, CancellationToken cancellationToken)
    {
        await container.GetBlobClient(RecordBlobName(job.JobId)).UploadAsync(
            new BinaryData(JsonSerializer.SerializeToUtf8Bytes(job, TrainingOutputs.Json)),
            new BlobUploadOptions { Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All } }, cancellationToken);
    }

    /// <summary>The job, or null if there is none with that id.</summary>
    public async Task<TRecord?> GetAsync(string jobId, CancellationToken cancellationToken) =>
        (await GetWithETagAsync(jobId, cancellationToken))?.Job;

    private async Task<(TRecord Job, ETag ETag)?> GetWithETagAsync(string jobId, CancellationToken cancellationToken)
    {
        if (!IsValidId(jobId))
            return null;
        try
        {
            var content = await container.GetBlobClient(RecordBlobName(jobId)).DownloadContentAsync(cancellationToken);
            var job = JsonSerializer.Deserialize<TRecord>(content.Value.Content.ToMemory().Span, TrainingOutputs.Json)
                ?? throw new InvalidDataException($"Job record {RecordBlobName(jobId)} is empty.");
            return (job, content.Value.Details.ETag);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>
    /// Applies <paramref name="change"/> to the current record and writes it if the record did not change meanwhile
    /// (If-Match); on a conflict it re-reads and re-applies. <paramref name="change"/> returning null means "no write".
    /// </summary>
    /// <exception cref="KeyNotFoundException">No such job.</exception>
    public async Task<TRecord> UpdateAsync(string jobId, Func<TRecord, TRecord?> change, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            var current = await GetWithETagAsync(jobId, cancellationToken)
                ?? throw new KeyNotFoundException($"No job '{jobId}'.");
            var changed = change(current.Job);
            if (changed is null)
                return current.Job;
            var updated = (TRecord)changed.Touched(DateTimeOffset.UtcNow);
            try
            {
                await container.GetBlobClient(RecordBlobName(jobId)).UploadAsync(
                    new BinaryData(JsonSerializer.SerializeToUtf8Bytes(updated, TrainingOutputs.Json)),
                    new BlobUploadOptions { Conditions = new BlobRequestConditions { IfMatch = current.ETag } }, cancellationToken);
                return updated;
            }
            catch (RequestFailedException e) when (e.Status is 412 or 409 && attempt < 20)
            {
                await Task.Delay(Random.Shared.Next(5, 50), cancellationToken);
            }
        }
    }

    /// <summary>Every job, newest first.</summary>
    public async Task<List<TRecord>> ListAsync(CancellationToken cancellationToken)
    {
        var jobs = new List<TRecord>();
        await foreach (var item in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, prefix, cancellationToken))
        {
            if (!item.Name.EndsWith("/job.json", StringComparison.Ordinal))
                continue;
            var id = item.Name[prefix.Length..^"/job.json".Length];
            if (await GetAsync(id, cancellationToken) is { } job)
                jobs.Add(job);
        }
        return [.. jobs.OrderByDescending(j => j.CreatedAt)];
    }

    public BlobArtifactSink Artifacts(string jobId) => new(container, $"{prefix}{jobId}/artifacts/");

    /// <summary>Job ids are ours (GUID "N" format); anything else cannot name a job and must not reach a blob path.</summary>
    public static bool IsValidId(string? jobId) =>
        jobId is { Length: 32 } && jobId.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');
}

/// <summary>Training jobs: <c>jobs/{id}/…</c> in the Training service's container.</summary>
public sealed class TrainingJobStore(BlobContainerClient container) : JobStore<TrainingJobRecord>(container, "jobs/")
{
    public static string RecordBlob(string jobId) => $"jobs/{jobId}/job.json";

    public static string ArtifactBlob(string jobId, string name) => $"jobs/{jobId}/artifacts/{name}";
}

/// <summary>RUN jobs (classifying bins or images on the platform): <c>runs/{id}/…</c> in the same container.</summary>
public sealed class RunJobStore(BlobContainerClient container) : JobStore<RunJobRecord>(container, "runs/");

/// <summary>An <see cref="IArtifactSink"/> over blobs under a prefix.</summary>
public sealed class BlobArtifactSink(BlobContainerClient container, string prefix) : IArtifactSink
{
    public string Prefix => prefix;

    public async Task WriteAsync(string name, ReadOnlyMemory<byte> content, CancellationToken cancellationToken) =>
        await container.GetBlobClient(prefix + name).UploadAsync(new BinaryData(content), overwrite: true, cancellationToken);

    public async Task<byte[]?> ReadAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            var content = await container.GetBlobClient(prefix + name).DownloadContentAsync(cancellationToken);
            return content.Value.Content.ToArray();
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>Artifact names and sizes (resume state excluded).</summary>
    public async IAsyncEnumerable<(string Name, long Size)> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var item in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, prefix, cancellationToken))
        {
            var name = item.Name[prefix.Length..];
            if (!name.StartsWith("resume/", StringComparison.Ordinal))
                yield return (name, item.Properties.ContentLength ?? 0);
        }
    }

    public BlobClient Blob(string name) => container.GetBlobClient(prefix + name);
}
