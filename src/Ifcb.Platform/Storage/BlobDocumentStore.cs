using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace Ifcb.Platform.Storage;

/// <summary>A JSON document and the ETag it was read or written with.</summary>
public sealed record Stored<T>(T Value, ETag ETag);

/// <summary>How hard a contended read-modify-write tries: rounds before Aborted, and the full-jitter backoff between them.</summary>
public sealed record DocumentWritePolicy(int MaxWriteAttempts, TimeSpan RetryBaseDelay, TimeSpan RetryMaxDelay)
{
    /// <summary>30 rounds, 10 ms doubling up to 1 s.</summary>
    public static DocumentWritePolicy Default { get; } = new(30, TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(1));
}

/// <summary>
/// A document that copies a few of its fields into its blob's metadata (written in the same PUT as the content), so
/// that a container listing, which can return metadata, answers questions like "which versions are still PENDING"
/// without reading every document.
/// </summary>
public interface IListedMetadata
{
    IDictionary<string, string> ListedMetadata { get; }
}

/// <summary>
/// JSON documents in blobs with optimistic concurrency, the storage primitive under every job store: creating uses
/// <c>If-None-Match: *</c> (fails if the blob exists), replacing uses <c>If-Match: etag</c> (fails if anyone wrote
/// since we read), and <see cref="UpdateAsync{T}(string, Func{T, T}, Func{Exception}, CancellationToken)"/> retries
/// the read-modify-write with jittered backoff until it wins or gives up with Aborted. Transport failures are retried
/// by the Azure SDK's own policy (configured where the BlobServiceClient is built); what still escapes is a transient
/// fault for the caller to handle.
/// </summary>
/// <remarks>
/// Awaits use ConfigureAwait(false), as in every shared library under src/ (the services and engines do not): the
/// services, the CLI, tests and synchronous callbacks that block on a job update all run this code, so no continuation
/// may depend on the caller's synchronization context.
/// </remarks>
public sealed class BlobDocumentStore(BlobContainerClient container, JsonSerializerOptions json, DocumentWritePolicy? policy = null)
{
    private static readonly BlobHttpHeaders JsonHeaders = new() { ContentType = "application/json" };

    private readonly DocumentWritePolicy _policy = policy ?? DocumentWritePolicy.Default;

    public BlobContainerClient Container => container;

    public JsonSerializerOptions Json => json;

    /// <summary>The document, or null when the blob does not exist.</summary>
    /// <exception cref="InvalidDataException">The blob does not hold the JSON of a <typeparamref name="T"/>.</exception>
    public async Task<Stored<T>?> ReadAsync<T>(string blobName, CancellationToken cancellationToken)
    {
        try
        {
            var response = await container.GetBlobClient(blobName).DownloadContentAsync(cancellationToken).ConfigureAwait(false);
            T? value;
            try
            {
                value = JsonSerializer.Deserialize<T>(response.Value.Content.ToMemory().Span, json);
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{container.Name}/{blobName} is not a valid {typeof(T).Name} document: {e.Message}", e);
            }
            return value is null
                ? throw new InvalidDataException($"{container.Name}/{blobName} holds JSON null.")
                : new Stored<T>(value, response.Value.Details.ETag);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>Creates the blob unless it already exists; returns null when it does (someone else won).</summary>
    public async Task<ETag?> TryCreateAsync<T>(string blobName, T value, CancellationToken cancellationToken)
    {
        try
        {
            return await WriteAsync(blobName, value, new BlobRequestConditions { IfNoneMatch = ETag.All }, cancellationToken)
                .ConfigureAwait(false);
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            return null;
        }
    }

    /// <summary>Replaces the blob if it still has <paramref name="ifMatch"/>; returns null when it changed or vanished.</summary>
    public async Task<ETag?> TryReplaceAsync<T>(string blobName, T value, ETag ifMatch, CancellationToken cancellationToken)
    {
        try
        {
            return await WriteAsync(blobName, value, new BlobRequestConditions { IfMatch = ifMatch }, cancellationToken)
                .ConfigureAwait(false);
        }
        catch (RequestFailedException e) when (e.Status is 404 or 409 or 412)
        {
            return null;
        }
    }

    /// <summary>Writes the blob whatever it held (for documents with a single writer, e.g. a worker's own partial result).</summary>
    public Task<ETag> PutAsync<T>(string blobName, T value, CancellationToken cancellationToken) =>
        WriteAsync(blobName, value, null, cancellationToken);

    /// <summary>
    /// Read-modify-write with optimistic concurrency. <paramref name="mutate"/> may run several times (once per round)
    /// and must not have side effects beyond recording what it saw; returning null means "no change".
    /// </summary>
    /// <returns>The document now stored and whether this call changed it.</returns>
    /// <exception cref="IfcbException">
    /// NotFound (from <paramref name="whenMissing"/>) or Aborted after the policy's rounds are lost.
    /// </exception>
    public Task<(Stored<T> Document, bool Changed)> UpdateAsync<T>(string blobName, Func<T, T?> mutate, Func<Exception> whenMissing,
        CancellationToken cancellationToken) where T : class
    {
        ArgumentNullException.ThrowIfNull(mutate);
        return UpdateAsync<T>(blobName, current => Task.FromResult(mutate(current)), whenMissing, cancellationToken);
    }

    /// <summary>
    /// Read-modify-write whose decision needs other reads: whatever <paramref name="mutate"/> reads after this blob is
    /// guarded too, because a writer that changes this blob in between makes the conditional write fail and the whole
    /// decision run again on fresh data.
    /// </summary>
    public async Task<(Stored<T> Document, bool Changed)> UpdateAsync<T>(string blobName, Func<T, Task<T?>> mutate,
        Func<Exception> whenMissing, CancellationToken cancellationToken) where T : class
    {
        ArgumentNullException.ThrowIfNull(mutate);
        ArgumentNullException.ThrowIfNull(whenMissing);
        for (var attempt = 1; ; attempt++)
        {
            var current = await ReadAsync<T>(blobName, cancellationToken).ConfigureAwait(false) ?? throw whenMissing();
            var updated = await mutate(current.Value).ConfigureAwait(false);
            if (updated is null)
                return (current, false);
            if (await TryReplaceAsync(blobName, updated, current.ETag, cancellationToken).ConfigureAwait(false) is { } etag)
                return (new Stored<T>(updated, etag), true);
            if (attempt >= _policy.MaxWriteAttempts)
                throw IfcbException.Aborted(
                    $"{container.Name}/{blobName} was changed by other writers {attempt} times in a row; retry the request.");
            await Task.Delay(Backoff(attempt), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Full-jitter exponential backoff under this store's policy: spreads retrying writers so one of them wins the next
    /// round.
    /// </summary>
    public TimeSpan Backoff(int attempt) => TimeSpan.FromMilliseconds(Random.Shared.NextDouble() *
        Math.Min(_policy.RetryMaxDelay.TotalMilliseconds, _policy.RetryBaseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 16))));

    /// <summary>Deletes the blob if present (and, with <paramref name="ifMatch"/>, unchanged); true when this call deleted it.</summary>
    public async Task<bool> DeleteAsync(string blobName, CancellationToken cancellationToken, ETag? ifMatch = null)
    {
        try
        {
            var conditions = ifMatch is { } etag ? new BlobRequestConditions { IfMatch = etag } : null;
            var response = await container.GetBlobClient(blobName)
                .DeleteIfExistsAsync(DeleteSnapshotsOption.IncludeSnapshots, conditions, cancellationToken).ConfigureAwait(false);
            return response.Value;
        }
        catch (RequestFailedException e) when (e.Status == 412)
        {
            return false;
        }
    }

    /// <summary>Names (and last-modified times) of the blobs under <paramref name="prefix"/>, in listing order.</summary>
    public async IAsyncEnumerable<(string Name, DateTimeOffset? LastModified)> ListAsync(string prefix,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        IAsyncEnumerator<BlobItem>? items = null;
        try
        {
            items = container.GetBlobsAsync(new GetBlobsOptions { Prefix = prefix }, cancellationToken)
                .GetAsyncEnumerator(cancellationToken);
            while (true)
            {
                try
                {
                    if (!await items.MoveNextAsync().ConfigureAwait(false))
                        yield break;
                }
                catch (RequestFailedException e) when (e.Status == 404)
                {
                    yield break; // no container yet: nothing stored
                }
                yield return (items.Current.Name, items.Current.Properties.LastModified);
            }
        }
        finally
        {
            if (items is not null)
                await items.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Names of all blobs under <paramref name="prefix"/>, in ordinal (listing) order.</summary>
    public async Task<List<string>> ListBlobNamesAsync(string prefix, CancellationToken cancellationToken) =>
        [.. (await ListBlobsAsync(prefix, withMetadata: false, cancellationToken).ConfigureAwait(false)).Select(blob => blob.Name)];

    /// <summary>All blobs under <paramref name="prefix"/> in listing order, with their metadata if asked (same listing calls).</summary>
    public async Task<List<(string Name, IDictionary<string, string> Metadata)>> ListBlobsAsync(string prefix, bool withMetadata,
        CancellationToken cancellationToken)
    {
        var blobs = new List<(string, IDictionary<string, string>)>();
        var options = new GetBlobsOptions { Prefix = prefix, Traits = withMetadata ? BlobTraits.Metadata : BlobTraits.None };
        await foreach (var item in container.GetBlobsAsync(options, cancellationToken).ConfigureAwait(false))
            blobs.Add((item.Name, item.Metadata ?? new Dictionary<string, string>()));
        return blobs;
    }

    /// <summary>The immediate "folders" under <paramref name="prefix"/>, without the prefix or trailing slash.</summary>
    public async Task<List<string>> ListChildFoldersAsync(string prefix, CancellationToken cancellationToken)
    {
        var names = new List<string>();
        var options = new GetBlobsByHierarchyOptions { Prefix = prefix, Delimiter = "/" };
        await foreach (var item in container.GetBlobsByHierarchyAsync(options, cancellationToken).ConfigureAwait(false))
        {
            if (item.IsPrefix)
                names.Add(item.Prefix[prefix.Length..].TrimEnd('/'));
        }
        return names;
    }

    private async Task<ETag> WriteAsync<T>(string blobName, T value, BlobRequestConditions? conditions, CancellationToken cancellationToken)
    {
        var content = new BinaryData(JsonSerializer.SerializeToUtf8Bytes(value, json));
        // Metadata goes in the same PUT as the content, so it always describes the stored document.
        var metadata = (value as IListedMetadata)?.ListedMetadata;
        var response = await container.GetBlobClient(blobName)
            .UploadAsync(content, new BlobUploadOptions { Conditions = conditions, HttpHeaders = JsonHeaders, Metadata = metadata },
                cancellationToken)
            .ConfigureAwait(false);
        return response.Value.ETag;
    }
}
