using Grpc.Core;
using Ifcb.Data.Bins;
using Ifcb.Protos;

namespace Ifcb.Client;

/// <summary>Uploads raw IFCB bins (their .adc, .hdr and .roi files) as a new bin set through Datasets.UploadBins.</summary>
public static class BinSetUpload
{
    /// <summary>
    /// The bin files under <paramref name="source"/>: a bin path (with or without extension), or a folder walked
    /// recursively in any layout. Files that are not named like a bin are ignored.
    /// </summary>
    public static IReadOnlyList<string> FindBinFiles(string source)
    {
        if (Directory.Exists(source))
            return [.. Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories).Where(IsBinFile).Order(StringComparer.Ordinal)];
        var stem = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(source))!, Path.GetFileNameWithoutExtension(source));
        var files = new[] { ".adc", ".hdr", ".roi" }.Select(e => stem + e).Where(File.Exists).ToList();
        return files.Count > 0
            ? files
            : throw new FileNotFoundException($"No bin at {source} (expected a folder or the path of a bin's .adc/.hdr/.roi).");
    }

    private static bool IsBinFile(string path)
    {
        try
        {
            BlobBinSetStore.ValidateFileName(Path.GetFileName(path));
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>
    /// Uploads <paramref name="files"/> as a new bin set labelled <paramref name="name"/>. Each call creates a set of
    /// its own: pass the returned <see cref="BinSetInfo.Id"/> (not the name) to StartRun.
    /// </summary>
    public static async Task<BinSetInfo> UploadAsync(Datasets.DatasetsClient client, string name, IReadOnlyList<string> files,
        Metadata? headers = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(files);
        using var call = client.UploadBins(headers, cancellationToken: cancellationToken);
        var upload = new UploadStream<DatasetUploadChunk, BinSetInfo>(call, cancellationToken);
        await upload.WriteAsync(new DatasetUploadChunk { Header = new DatasetUploadHeader { Name = name } });
        var buffer = new byte[DatasetUpload.ChunkSize];
        foreach (var path in files)
        {
            if (!await DatasetUpload.SendFileAsync(upload, "", Path.GetFileName(path), path, buffer, cancellationToken))
                break;
        }
        return await upload.CompleteAsync();
    }
}
