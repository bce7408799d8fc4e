using Azure;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Ifcb.Data.Datasets.Shards;

namespace Ifcb.Data.Datasets;

/// <summary>
/// The shards of the datasets in a container (<c>shards/{sha256}.tar</c> and its <c>.index.json</c>): stored once per
/// SHA-256, renewed while an upload reuses them, read whole (into a worker's cache) or by byte range.
/// </summary>
internal sealed class DatasetShards(BlobContainerClient container, DatasetStoreOptions options)
{
    /// <summary>Large blobs go up and down in blocks of this size, several at a time.</summary>
    private static readonly StorageTransferOptions Transfer = new()
    {
        InitialTransferSize = 8 * 1024 * 1024, MaximumTransferSize = 8 * 1024 * 1024, MaximumConcurrency = 4,
    };

    private static readonly BlobHttpHeaders JsonHeaders = new() { ContentType = "application/json" };
    private static readonly BlobHttpHeaders TarHeaders = new() { ContentType = "application/x-tar" };

    /// <summary>
    /// Rewrites the metadata of a stored shard and its index (a collector then skips them for the next grace period, and
    /// one that listed them before fails its conditional delete); false when either is gone.
    /// </summary>
    public async Task<bool> RenewAsync(string dataset, string sha256, CancellationToken token)
    {
        try
        {
            var metadata = new Dictionary<string, string> { [DatasetLayout.HashMetadataKey] = sha256 };
            await container.GetBlobClient(DatasetLayout.ShardIndexBlobName(dataset, sha256))
                .SetMetadataAsync(metadata, cancellationToken: token).ConfigureAwait(false);
            await container.GetBlobClient(DatasetLayout.ShardBlobName(dataset, sha256)).SetMetadataAsync(metadata, cancellationToken: token)
                .ConfigureAwait(false);
            return true;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return false;
        }
    }

    /// <summary>
    /// Stores a shard written to <paramref name="tarPath"/> and its index: the index first, so that a stored shard
    /// always has one. Both are written only if absent (the same SHA-256 means the same bytes).
    /// </summary>
    public async Task PutAsync(string dataset, ShardIndex index, string tarPath, CancellationToken token)
    {
        var metadata = new Dictionary<string, string> { [DatasetLayout.HashMetadataKey] = index.Shard };
        var absent = new BlobRequestConditions { IfNoneMatch = ETag.All };
        try
        {
            await container.GetBlobClient(DatasetLayout.ShardIndexBlobName(dataset, index.Shard)).UploadAsync(
                BinaryData.FromBytes(index.ToJson()),
                new BlobUploadOptions { HttpHeaders = JsonHeaders, Metadata = metadata, Conditions = absent }, token).ConfigureAwait(false);
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            // left by an earlier upload of the same shard that stopped before the shard itself
        }
        try
        {
            await container.GetBlobClient(DatasetLayout.ShardBlobName(dataset, index.Shard)).UploadAsync(tarPath,
                new BlobUploadOptions { HttpHeaders = TarHeaders, Metadata = metadata, Conditions = absent, TransferOptions = Transfer },
                token).ConfigureAwait(false);
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            // a concurrent upload stored the same shard a moment ago
        }
    }

    /// <summary>A shard's index, checked (see <see cref="ShardIndex.Parse"/>).</summary>
    /// <exception cref="KeyNotFoundException">The index is gone (the generation was collected).</exception>
    /// <exception cref="InvalidDataException">The index is damaged.</exception>
    public async Task<ShardIndex> ReadIndexAsync(string dataset, StoredShard shard, CancellationToken token)
    {
        var blobName = DatasetLayout.ShardIndexBlobName(dataset, shard.Sha256);
        try
        {
            var content = await container.GetBlobClient(blobName).DownloadContentAsync(token).ConfigureAwait(false);
            var index = ShardIndex.Parse(content.Value.Content.ToMemory().Span, shard.Sha256, $"{container.Name}/{blobName}");
            if (index.Bytes != shard.Bytes || index.Members.Count != shard.Members)
                throw new InvalidDataException(
                    $"{container.Name}/{blobName} describes {index.Members.Count} images in {index.Bytes} bytes; " +
                    $"the manifest says {shard.Members} in {shard.Bytes}. The dataset's storage was altered; re-upload it.");
            return index;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw Gone(dataset, e);
        }
    }

    /// <summary>Downloads a whole shard into <paramref name="target"/> (blocks fetched in parallel).</summary>
    /// <exception cref="KeyNotFoundException">The shard is gone.</exception>
    public async Task DownloadAsync(string dataset, string sha256, Stream target, CancellationToken token)
    {
        try
        {
            await container.GetBlobClient(DatasetLayout.ShardBlobName(dataset, sha256))
                .DownloadToAsync(target, new BlobDownloadToOptions { TransferOptions = Transfer }, token).ConfigureAwait(false);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw Gone(dataset, e);
        }
    }

    /// <summary>Opens bytes [offset, offset + length) of a shard as a stream that delivers them as they arrive.</summary>
    /// <exception cref="KeyNotFoundException">The shard is gone.</exception>
    public async Task<Stream> OpenRangeAsync(string dataset, string sha256, long offset, long length,
        CancellationToken token)
    {
        try
        {
            var response = await container.GetBlobClient(DatasetLayout.ShardBlobName(dataset, sha256))
                .DownloadStreamingAsync(new BlobDownloadOptions { Range = new HttpRange(offset, length) }, token).ConfigureAwait(false);
            return response.Value.Content;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw Gone(dataset, e);
        }
    }

    private KeyNotFoundException Gone(string dataset, Exception inner) => new(
        $"A shard of dataset {dataset} is gone: the dataset was re-uploaded or deleted more than {options.GraceText} ago. " +
        "Start again to read its current version.", inner);
}
