using System.Text.Json;
using System.Text.Json.Serialization;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine;

/// <summary>A JSON document and the ETag it was read or written with.</summary>
internal sealed record Stored<T>(T Value, ETag ETag);

/// <summary>Outcome of a read-modify-write: the document now stored, and whether this call changed it.</summary>
internal sealed record Updated<T>(T Value, ETag ETag, bool Changed);

/// <summary>
/// The storage primitives: JSON documents in blobs with optimistic concurrency. Creating uses
/// <c>If-None-Match: *</c> (fails if the blob exists), replacing uses <c>If-Match: etag</c> (fails if anyone wrote
/// since we read), and <see cref="UpdateAsync{T}"/> retries the read-modify-write with jittered backoff.
/// </summary>
internal sealed class ETagJsonStore(BlobContainerClient container, RegistryOptions options)
{
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseUpper) },
    };

    private static readonly BlobHttpHeaders JsonHeaders = new() { ContentType = "application/json" };

    public BlobContainerClient Container => container;

    public async Task<Stored<T>?> ReadAsync<T>(string blobName, CancellationToken cancellationToken)
    {
        try
        {
            var response = await container.GetBlobClient(blobName).DownloadContentAsync(cancellationToken).ConfigureAwait(false);
            var value = response.Value.Content.ToObjectFromJson<T>(Json)
                ?? throw new InvalidDataException($"Blob {blobName} holds JSON null.");
            return new Stored<T>(value, response.Value.Details.ETag);
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

    /// <summary>
    /// Read-modify-write with optimistic concurrency. <paramref name="mutate"/> may run several times (once per
    /// attempt) and must not have side effects beyond recording what it saw; returning null means "no change".
    /// </summary>
    public Task<Updated<T>> UpdateAsync<T>(
        string blobName, Func<T, T?> mutate, Func<IfcbException> whenMissing, CancellationToken cancellationToken)
        where T : class =>
        UpdateAsync<T>(blobName, current => Task.FromResult(mutate(current)), whenMissing, cancellationToken);

    /// <summary>
    /// Read-modify-write whose decision needs other reads: whatever <paramref name="mutate"/> reads after this blob is
    /// guarded too, because a writer that changes this blob in between makes the conditional write fail and the
    /// whole decision run again on fresh data.
    /// </summary>
    public async Task<Updated<T>> UpdateAsync<T>(
        string blobName, Func<T, Task<T?>> mutate, Func<IfcbException> whenMissing, CancellationToken cancellationToken)
        where T : class
    {
        for (var attempt = 1; ; attempt++)
        {
            var current = await ReadAsync<T>(blobName, cancellationToken).ConfigureAwait(false) ?? throw whenMissing();
            var updated = await mutate(current.Value).ConfigureAwait(false);
            if (updated is null)
            {
                return new Updated<T>(current.Value, current.ETag, Changed: false);
            }

            if (await TryReplaceAsync(blobName, updated, current.ETag, cancellationToken).ConfigureAwait(false) is { } etag)
            {
                return new Updated<T>(updated, etag, Changed: true);
            }

            if (attempt >= options.MaxWriteAttempts)
            {
                throw new IfcbException(ErrorKind.Aborted,
                    $"{blobName} was changed by other writers {attempt} times in a row; retry the request.");
            }

            await Task.Delay(Backoff(attempt), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Full-jitter exponential backoff: spreads retrying writers so one of them wins the next round.</summary>
    public TimeSpan Backoff(int attempt)
    {
        var ceiling = Math.Min(options.RetryMaxDelay.TotalMilliseconds,
            options.RetryBaseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 16)));
        return TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * ceiling);
    }

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

    /// <summary>Names of all blobs under <paramref name="prefix"/>, in ordinal (listing) order.</summary>
    public async Task<List<string>> ListBlobNamesAsync(string prefix, CancellationToken cancellationToken) =>
        [.. (await ListBlobsAsync(prefix, withMetadata: false, cancellationToken).ConfigureAwait(false)).Select(blob => blob.Name)];

    /// <summary>All blobs under <paramref name="prefix"/> in listing order, with their metadata if asked (same listing calls).</summary>
    public async Task<List<(string Name, IDictionary<string, string> Metadata)>> ListBlobsAsync(
        string prefix, bool withMetadata, CancellationToken cancellationToken)
    {
        var blobs = new List<(string, IDictionary<string, string>)>();
        var options = new GetBlobsOptions { Prefix = prefix, Traits = withMetadata ? BlobTraits.Metadata : BlobTraits.None };
        await foreach (var item in container.GetBlobsAsync(options, cancellationToken).ConfigureAwait(false))
        {
            blobs.Add((item.Name, item.Metadata ?? new Dictionary<string, string>()));
        }

        return blobs;
    }

    /// <summary>The immediate "folders" under <paramref name="prefix"/>, without the prefix or trailing slash.</summary>
    public async Task<List<string>> ListChildFoldersAsync(string prefix, CancellationToken cancellationToken)
    {
        var names = new List<string>();
        await foreach (var item in container
                           .GetBlobsByHierarchyAsync(new GetBlobsByHierarchyOptions { Prefix = prefix, Delimiter = "/" }, cancellationToken)
                           .ConfigureAwait(false))
        {
            if (item.IsPrefix)
            {
                names.Add(item.Prefix[prefix.Length..].TrimEnd('/'));
            }
        }

        return names;
    }

    private async Task<ETag> WriteAsync<T>(
        string blobName, T value, BlobRequestConditions conditions, CancellationToken cancellationToken)
    {
        var content = BinaryData.FromObjectAsJson(value, Json);
        // Metadata goes in the same PUT as the content, so it always describes the stored document.
        var metadata = (value as IListedMetadata)?.ListedMetadata;
        var response = await container.GetBlobClient(blobName)
            .UploadAsync(content, new BlobUploadOptions { Conditions = conditions, HttpHeaders = JsonHeaders, Metadata = metadata }, cancellationToken)
            .ConfigureAwait(false);
        return response.Value.ETag;
    }
}

/// <summary>
/// A document that copies a few of its fields into its blob's metadata, so that a container listing (which can return
/// metadata) answers questions like "which versions are still PENDING" without reading every document.
/// </summary>
internal interface IListedMetadata
{
    IDictionary<string, string> ListedMetadata { get; }
}
