using System.Security.Cryptography;
using Azure;
using Azure.Storage.Blobs;

namespace Ifcb.Data.Datasets;

/// <summary>
/// The images of datasets stored before shards: downloads that check the hash, from the image's object (format 2) or
/// its blob (format 1).
/// </summary>
internal sealed class DatasetImages(BlobContainerClient container, DatasetStoreOptions options)
{
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
