using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace Ifcb.Data.Datasets;

/// <summary>
/// Deletes what no live generation of a dataset needs, under the guarantees described on <see cref="BlobDatasetStore"/>:
/// never a blob modified within the grace period, and only with <c>If-Match</c> the ETag it listed.
/// </summary>
internal sealed class DatasetGarbageCollector(BlobContainerClient container, DatasetStoreOptions options, DatasetManifests manifests)
{
    /// <summary>
    /// Collection is housekeeping: once the upload or delete is committed, a failed or cancelled sweep is left to the
    /// next one.
    /// </summary>
    public async Task CollectAfterCommitAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            await CollectAsync(name, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RequestFailedException or InvalidDataException or OperationCanceledException)
        {
        }
    }

    /// <summary>Collects garbage in every dataset; a dataset with a damaged manifest is skipped.</summary>
    /// <returns>The number of blobs deleted.</returns>
    public async Task<int> CollectAllAsync(CancellationToken cancellationToken)
    {
        var deleted = 0;
        await foreach (var name in manifests.ListNamesAsync(cancellationToken).ConfigureAwait(false))
        {
            try
            {
                deleted += await CollectAsync(name, cancellationToken).ConfigureAwait(false);
            }
            catch (InvalidDataException)
            {
                // A damaged manifest: keep that dataset's blobs for a person to look at, and sweep the others.
            }
        }
        return deleted;
    }

    /// <summary>
    /// Deletes the blobs of <paramref name="name"/> that no live generation needs (the current one, and those retired
    /// within the grace period) and that were not modified within the grace period: shards and their indexes, objects,
    /// generation manifests, the image blobs of the layout before generations, and finally a tombstone with nothing left to protect.
    /// </summary>
    /// <returns>The number of blobs deleted.</returns>
    public async Task<int> CollectAsync(string name, CancellationToken cancellationToken)
    {
        var cutoff = DateTimeOffset.UtcNow - options.GarbageGrace;
        var (stored, etag) = await manifests.ReadAsync(name, cancellationToken).ConfigureAwait(false);
        var live = new HashSet<string>(StringComparer.Ordinal);
        var referenced = new HashSet<string>(StringComparer.Ordinal);
        if (stored is not null)
        {
            if (stored.CurrentGeneration is { } current)
            {
                live.Add(current);
                Reference(stored, referenced);
            }
            foreach (var retired in stored.Retired.Where(r => r.RetiredAt > cutoff))
            {
                live.Add(retired.Generation);
                if (retired.Generation == StoredManifest.LegacyGeneration)
                    continue;
                var generation = await manifests.ReadGenerationAsync(name, retired.Generation, cancellationToken).ConfigureAwait(false);
                if (generation is null)
                    return 0; // cannot tell what that generation still needs: keep everything
                Reference(generation, referenced);
            }
        }

        var root = DatasetLayout.Root(name);
        var deleted = 0;
        var remaining = 0;
        await foreach (var blob in container.GetBlobsAsync(new GetBlobsOptions { Prefix = root }, cancellationToken).ConfigureAwait(false))
        {
            var relative = blob.Name[root.Length..];
            if (relative == DatasetLayout.ManifestFileName)
                continue;
            var garbage = DatasetLayout.IsObject(relative, out var sha256) ? !referenced.Contains(sha256)
                : DatasetLayout.IsShard(relative, out var shard) ? !referenced.Contains(shard)
                : DatasetLayout.IsGeneration(relative, out var generation) ? !live.Contains(generation)
                : !live.Contains(StoredManifest.LegacyGeneration); // an image blob of the layout before generations
            if (garbage && blob.Properties.LastModified < cutoff
                && await TryDeleteAsync(blob.Name, blob.Properties.ETag, cancellationToken).ConfigureAwait(false))
                deleted++;
            else
                remaining++;
        }
        if (stored is { Deleted: true } && live.Count == 0 && remaining == 0
            && await TryDeleteAsync(DatasetLayout.ManifestBlobName(name), etag, cancellationToken).ConfigureAwait(false))
            deleted++;
        return deleted;
    }

    // What a generation needs: its shards (format 3) or its objects (format 2). Hashes of either kind share one set: an
    // object is an image's hash, a shard a tar's, and the two never collide.
    private static void Reference(StoredManifest generation, HashSet<string> referenced)
    {
        if (generation.IsSharded)
            referenced.UnionWith(generation.Shards!.Select(s => s.Sha256));
        else
            referenced.UnionWith(generation.Files.Select(f => f.Sha256));
    }

    /// <summary>
    /// Deletes a blob only if it still has the ETag the caller saw; false when it changed or is gone (or, without an
    /// ETag, on any storage error).
    /// </summary>
    public async Task<bool> TryDeleteAsync(string blobName, ETag? etag, CancellationToken cancellationToken)
    {
        try
        {
            var conditions = etag is { } e ? new BlobRequestConditions { IfMatch = e } : null;
            var response = await container.DeleteBlobIfExistsAsync(blobName, conditions: conditions, cancellationToken: cancellationToken)
                .ConfigureAwait(false);
            return response.Value;
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412 || etag is null)
        {
            return false;
        }
    }
}
