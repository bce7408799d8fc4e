using System.Text.Json;
using Azure.Storage.Blobs;
using Ifcb.Platform.Storage;

namespace Ifcb.Platform.Jobs;

/// <summary>
/// Jobs of one kind in a blob container: <c>{prefix}{id}/job.json</c> (the record, ETag-guarded through
/// <see cref="BlobDocumentStore"/>), <c>{prefix}{id}/artifacts/{name}</c> (outputs and resume state), and an
/// <em>active marker</em> <c>active/{prefix}{id}</c> for every job that is not final or still needs follow-up, so the
/// reconciler reads only those and not the whole history. The marker is written before the record and removed after
/// the record became final, so a job is never active without a marker (a marker without a job is cleaned up).
/// </summary>
public class JobStore<T> where T : JobRecord<T>
{
    private const string ActivePrefix = "active/";
    private readonly string _prefix;
    private readonly TimeProvider _time;

    public JobStore(BlobContainerClient container, string prefix, JsonSerializerOptions json, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(container);
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        _prefix = prefix.EndsWith('/') ? prefix : prefix + "/";
        Documents = new BlobDocumentStore(container, json);
        _time = time ?? TimeProvider.System;
    }

    public BlobDocumentStore Documents { get; }

    public BlobContainerClient Container => Documents.Container;

    public TimeProvider Time => _time;

    public string RecordBlobName(string jobId) => $"{_prefix}{jobId}/job.json";

    public string ArtifactBlobName(string jobId, string name) => $"{_prefix}{jobId}/artifacts/{name}";

    public string ArtifactsPrefix(string jobId) => $"{_prefix}{jobId}/artifacts/";

    private string ActiveMarker(string jobId) => $"{ActivePrefix}{_prefix}{jobId}";

    public Task EnsureContainerAsync(CancellationToken cancellationToken) =>
        Container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);

    /// <summary>Job ids are ours (GUID "N" format); anything else cannot name a job and must not reach a blob path.</summary>
    public static bool IsValidId(string? jobId) =>
        jobId is { Length: 32 } && jobId.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');

    public static string NewId() => Guid.NewGuid().ToString("N");

    /// <summary>Stores a new job (and its active marker first).</summary>
    /// <exception cref="IfcbException">AlreadyExists: a job with this id is stored.</exception>
    public async Task<T> CreateAsync(T job, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (!IsValidId(job.JobId))
            throw new ArgumentException($"Job id '{job.JobId}' is not 32 lowercase hex digits.", nameof(job));
        var now = _time.GetUtcNow();
        job = job.Created(now);
        await Documents.PutAsync(ActiveMarker(job.JobId), new ActiveMarkerDocument(job.JobId, now), cancellationToken)
            .ConfigureAwait(false);
        if (await Documents.TryCreateAsync(RecordBlobName(job.JobId), job, cancellationToken).ConfigureAwait(false) is null)
            throw new IfcbException(ErrorKind.AlreadyExists, $"Job {job.JobId} already exists.");
        return job;
    }

    /// <summary>The job, or null if there is none with that id (or the id is not a job id).</summary>
    public async Task<T?> GetAsync(string jobId, CancellationToken cancellationToken) =>
        IsValidId(jobId) ? (await Documents.ReadAsync<T>(RecordBlobName(jobId), cancellationToken).ConfigureAwait(false))?.Value : null;

    /// <summary>
    /// Applies <paramref name="change"/> (a transition of the record, or null for "no write") to the current record and
    /// writes it if nobody wrote meanwhile, re-reading and re-applying on a conflict. Stamps UpdatedAt; retires the
    /// active marker once the job is final and needs no follow-up.
    /// </summary>
    /// <returns>The record as stored, and whether this call wrote it.</returns>
    /// <exception cref="IfcbException">NotFound: no such job; Aborted: too many concurrent writers.</exception>
    public async Task<(T Job, bool Changed)> UpdateAsync(string jobId, Func<T, T?> change, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(change);
        if (!IsValidId(jobId))
            throw IfcbException.NotFound($"No job '{jobId}'.");
        var (document, changed) = await Documents.UpdateAsync<T>(RecordBlobName(jobId), current =>
                change(current)?.Touched(_time.GetUtcNow()),
            () => IfcbException.NotFound($"No job '{jobId}'."), cancellationToken).ConfigureAwait(false);
        var job = document.Value;
        if (changed && job.IsTerminal && !job.NeedsFollowUp())
            await RetireAsync(jobId, CancellationToken.None).ConfigureAwait(false);
        return (job, changed);
    }

    /// <summary>Every job, newest first (reads every record: for listings, not for hot paths).</summary>
    public async Task<List<T>> ListAsync(CancellationToken cancellationToken)
    {
        var ids = new List<string>();
        await foreach (var (name, _) in Documents.ListAsync(_prefix, cancellationToken).ConfigureAwait(false))
        {
            if (name.EndsWith("/job.json", StringComparison.Ordinal) && name.Count(c => c == '/') == _prefix.Count(c => c == '/') + 1)
                ids.Add(name[_prefix.Length..^"/job.json".Length]);
        }
        var jobs = new List<T>(ids.Count);
        foreach (var batch in ids.Chunk(16))
            jobs.AddRange((await Task.WhenAll(batch.Select(id => GetAsync(id, cancellationToken))).ConfigureAwait(false)).OfType<T>());
        return [.. jobs.OrderByDescending(j => j.CreatedAt)];
    }

    /// <summary>
    /// Ids of the jobs with an active marker (not final, or final with follow-up pending), and when the marker was
    /// written.
    /// </summary>
    public async Task<List<(string JobId, DateTimeOffset? MarkedAt)>> ListActiveAsync(CancellationToken cancellationToken)
    {
        var prefix = ActivePrefix + _prefix;
        var active = new List<(string, DateTimeOffset?)>();
        await foreach (var (name, modified) in Documents.ListAsync(prefix, cancellationToken).ConfigureAwait(false))
            active.Add((name[prefix.Length..], modified));
        return active;
    }

    /// <summary>Removes a job's active marker (the job is final and needs nothing more, or does not exist).</summary>
    public Task RetireAsync(string jobId, CancellationToken cancellationToken) =>
        Documents.DeleteAsync(ActiveMarker(jobId), cancellationToken);

    private sealed record ActiveMarkerDocument(string JobId, DateTimeOffset MarkedAt);
}
