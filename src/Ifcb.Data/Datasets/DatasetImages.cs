using System.Security.Cryptography;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace Ifcb.Data.Datasets;

/// <summary>
/// The image content of the datasets in a container: objects stored once per SHA-256 and renewed while an upload
/// reuses them, and downloads that check the hash, from the object or from the image blob of the layout before
/// generations.
/// </summary>
internal sealed class DatasetImages(BlobContainerClient container, DatasetStoreOptions options)
{
    /// <summary>Stores one object unless the dataset already has it (then renews it); true when it was there already.</summary>
    public async Task<bool> PutAsync(string name, string hash, byte[] bytes, CancellationToken token)
    {
        var blob = container.GetBlobClient(DatasetLayout.ObjectBlobName(name, hash));
        if (await RenewAsync(blob, hash, token).ConfigureAwait(false))
            return true;
        try
        {
            await blob.UploadAsync(BinaryData.FromBytes(bytes), new BlobUploadOptions
            {
                Metadata = new Dictionary<string, string> { [DatasetLayout.HashMetadataKey] = hash },
                Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
            }, token).ConfigureAwait(false);
            return false;
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            return true; // a concurrent upload stored the same content a moment ago
        }
    }

    /// <summary>
    /// Renews every object of an upload (hash → the local file it came from), storing again from the file any that
    /// is gone.
    /// </summary>
    /// <exception cref="InvalidDataException">A local file changed while it was being uploaded.</exception>
    public async Task RenewAllAsync(string name, IReadOnlyDictionary<string, string> pathOfObject, int parallelism,
        CancellationToken cancellationToken) =>
        await Parallel.ForEachAsync(pathOfObject, Parallelism(parallelism, cancellationToken),
            async (item, token) =>
            {
                var blob = container.GetBlobClient(DatasetLayout.ObjectBlobName(name, item.Key));
                if (await RenewAsync(blob, item.Key, token).ConfigureAwait(false))
                    return;
                var bytes = await File.ReadAllBytesAsync(item.Value, token).ConfigureAwait(false);
                if (Sha256(bytes) != item.Key)
                    throw new InvalidDataException($"{item.Value} changed while it was being uploaded; upload again.");
                await PutAsync(name, item.Key, bytes, token).ConfigureAwait(false);
            }).ConfigureAwait(false);

    /// <summary>
    /// Rewrites an object's metadata, which gives it a new ETag and Last-Modified: a collector skips it for the next grace
    /// period, and one that listed it before fails its conditional delete. False when the object does not exist.
    /// </summary>
    private static async Task<bool> RenewAsync(BlobClient blob, string hash, CancellationToken token)
    {
        try
        {
            await blob.SetMetadataAsync(new Dictionary<string, string> { [DatasetLayout.HashMetadataKey] = hash }, cancellationToken: token)
                .ConfigureAwait(false);
            return true;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return false;
        }
    }

    /// <summary>
    /// Downloads an image and checks its SHA-256, trying the object and the image blob of the layout before
    /// generations (that one first when <paramref name="legacyFirst"/>).
    /// </summary>
    /// <exception cref="KeyNotFoundException">
    /// Neither blob exists: the dataset was re-uploaded or deleted longer than the grace period ago.
    /// </exception>
    /// <exception cref="InvalidDataException">The stored bytes do not have that SHA-256.</exception>
    public async Task<byte[]> DownloadVerifiedAsync(string dataset, string className, string fileName, string sha256, bool legacyFirst,
        CancellationToken token)
    {
        var objectBlob = DatasetLayout.ObjectBlobName(dataset, sha256);
        var legacyBlob = DatasetLayout.ImagePath(dataset, className, fileName);
        var (first, second) = legacyFirst ? (legacyBlob, objectBlob) : (objectBlob, legacyBlob);
        var blobName = first;
        var bytes = await TryDownloadAsync(first, token).ConfigureAwait(false);
        if (bytes is null)
        {
            blobName = second;
            bytes = await TryDownloadAsync(second, token).ConfigureAwait(false)
                ?? throw new KeyNotFoundException(
                    $"Image {className}/{fileName} of dataset {dataset} is gone: the dataset was re-uploaded or deleted more than " +
                    $"{options.GraceText} ago. Start again to read its current version.");
        }
        var hash = Sha256(bytes);
        if (hash != sha256)
            throw new InvalidDataException(
                $"Blob {container.Name}/{blobName} has SHA-256 {hash} but the manifest says {sha256}; the stored image was altered. " +
                "Re-upload the dataset.");
        return bytes;
    }

    private async Task<byte[]?> TryDownloadAsync(string blobName, CancellationToken token)
    {
        try
        {
            return (await container.GetBlobClient(blobName).DownloadContentAsync(token).ConfigureAwait(false)).Value.Content.ToArray();
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>Lowercase hex SHA-256, as manifests and object names spell it.</summary>
    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>The options of the parallel loops over a dataset's files (at least one at a time).</summary>
    public static ParallelOptions Parallelism(int parallelism, CancellationToken cancellationToken) =>
        new() { MaxDegreeOfParallelism = Math.Max(1, parallelism), CancellationToken = cancellationToken };
}
