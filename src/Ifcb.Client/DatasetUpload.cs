using Google.Protobuf;
using Grpc.Core;
using Ifcb.Data.Datasets;
using Ifcb.Protos;

namespace Ifcb.Client;

/// <summary>Uploads a local class-folder dataset through Datasets.Upload (one folder per class, images inside).</summary>
public static class DatasetUpload
{
    public const int ChunkSize = 256 * 1024;

    /// <param name="filesDone">Reports (files sent, total files).</param>
    public static async Task<DatasetInfo> UploadFolderAsync(Datasets.DatasetsClient client, string name, string folder,
        Metadata? headers = null, IProgress<(int Done, int Total)>? filesDone = null, CancellationToken cancellationToken = default)
    {
        var perClass = DatasetSpec.ListClassFolders(folder);
        var total = perClass.Sum(c => c.Value.Count);
        if (total == 0)
            throw new InvalidDataException($"{Path.GetFullPath(folder)} has no images in class subfolders (expected {folder}/CLASS/IMAGE.png).");

        using var call = client.Upload(headers, cancellationToken: cancellationToken);
        await call.RequestStream.WriteAsync(new DatasetUploadChunk { Header = new DatasetUploadHeader { Name = name } }, cancellationToken);
        var buffer = new byte[ChunkSize];
        var done = 0;
        foreach (var (className, files) in perClass.OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            foreach (var path in files)
            {
                await SendFileAsync(call.RequestStream, className, path, buffer, cancellationToken);
                filesDone?.Report((++done, total));
            }
        }
        await call.RequestStream.CompleteAsync();
        return await call;
    }

    /// <summary>Streams one file as DatasetFileChunks of at most <see cref="ChunkSize"/> bytes, the last one marked (an empty file is one empty chunk).</summary>
    internal static async Task SendFileAsync(IClientStreamWriter<DatasetUploadChunk> stream, string className, string path, byte[] buffer,
        CancellationToken cancellationToken)
    {
        await using var file = File.OpenRead(path);
        var fileName = Path.GetFileName(path);
        while (true)
        {
            var read = await file.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken);
            var last = file.Position == file.Length;
            await stream.WriteAsync(new DatasetUploadChunk
            {
                File = new DatasetFileChunk { ClassName = className, FileName = fileName, Data = ByteString.CopyFrom(buffer, 0, read), Last = last },
            }, cancellationToken);
            if (last)
                return;
        }
    }
}
