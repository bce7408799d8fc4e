using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Ifcb.Data.Datasets;
using Ifcb.Platform;

namespace Ifcb.Data.Bins;

/// <summary>
/// Named sets of raw IFCB bins in blob storage (<c>binsets/{name}/{lid}.{adc|hdr|roi}</c>), the input of platform RUN
/// jobs. Only files named like a bin's three files are accepted; the set is flat (bins are identified by their lid).
/// </summary>
public sealed class BlobBinSetStore(BlobContainerClient container)
{
    public const string Prefix = "binsets/";
    private static readonly string[] Extensions = [".adc", ".hdr", ".roi"];

    /// <summary>Checks a file name: <c>{bin lid}.adc|.hdr|.roi</c>.</summary>
    /// <exception cref="ArgumentException">Not a bin file name (the message says what is expected).</exception>
    public static string ValidateFileName(string fileName)
    {
        ResourceName.ValidateFileName(fileName);
        var extension = Path.GetExtension(fileName);
        if (!Extensions.Contains(extension, StringComparer.Ordinal) || !BinId.TryParse(Path.GetFileNameWithoutExtension(fileName), out _))
            throw new ArgumentException(
                $"'{fileName}' is not an IFCB bin file: expected DYYYYMMDDTHHMMSS_IFCBnnn or IFCBn_YYYY_DDD_HHMMSS with .adc, .hdr or .roi.");
        return fileName;
    }

    public async Task UploadFileAsync(string set, string fileName, Stream content, CancellationToken cancellationToken)
    {
        ResourceName.ValidateDatasetName(set);
        ValidateFileName(fileName);
        await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
        await container.GetBlobClient($"{Prefix}{set}/{fileName}").UploadAsync(content, overwrite: true, cancellationToken);
    }

    /// <summary>The set's files and sizes.</summary>
    /// <exception cref="KeyNotFoundException">No bin set of that name.</exception>
    public async Task<IReadOnlyList<(string File, long Size)>> ListAsync(string set, CancellationToken cancellationToken)
    {
        ResourceName.ValidateDatasetName(set);
        var files = new List<(string, long)>();
        try
        {
            await foreach (var item in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, $"{Prefix}{set}/", cancellationToken))
                files.Add((item.Name[($"{Prefix}{set}/").Length..], item.Properties.ContentLength ?? 0));
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
        }
        return files.Count > 0 ? files : throw new KeyNotFoundException($"Bin set '{set}' does not exist; upload it with Datasets.UploadBins (ifcb run --remote does).");
    }

    /// <summary>Downloads the set into <paramref name="directory"/> (one flat folder of bin files).</summary>
    public async Task<int> DownloadAsync(string set, string directory, CancellationToken cancellationToken)
    {
        var files = await ListAsync(set, cancellationToken);
        Directory.CreateDirectory(directory);
        await Parallel.ForEachAsync(files, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken }, async (file, token) =>
            await container.GetBlobClient($"{Prefix}{set}/{file.File}").DownloadToAsync(Path.Combine(directory, file.File), token));
        return files.Count;
    }
}
