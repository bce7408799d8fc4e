using Google.Protobuf;
using Grpc.Core;
using Ifcb.Data.Datasets;
using Ifcb.Platform;
using Ifcb.Protos;

namespace Ifcb.Client;

/// <summary>
/// One image to upload: its class, its file name in the dataset, and where it is on disk (the stored dataset's own
/// record of it is <see cref="Ifcb.Data.Datasets.DatasetFile"/>).
/// </summary>
public sealed record ImageToUpload(string ClassName, string FileName, string LocalPath);

/// <summary>
/// Uploads through Datasets.Upload: a local class-folder dataset (one folder per class, images inside), or the merge a
/// dataset-config CSV describes.
/// </summary>
public static class DatasetUpload
{
    public const int ChunkSize = 256 * 1024;

    /// <param name="filesDone">Reports (files sent, total files).</param>
    public static Task<DatasetInfo> UploadFolderAsync(Datasets.DatasetsClient client, string name, string folder,
        Metadata? headers = null, IProgress<(int Done, int Total)>? filesDone = null, CancellationToken cancellationToken = default)
    {
        var files = DatasetSpec.ListClassFolders(folder)
            .SelectMany(c => c.Value.Select(path => new ImageToUpload(c.Key, Path.GetFileName(path), path)))
            .ToList();
        if (files.Count == 0)
            throw new InvalidDataException(
                $"{Path.GetFullPath(folder)} has no images in class subfolders (expected {folder}/CLASS/IMAGE.png).");
        return UploadFilesAsync(client, name, files, headers, filesDone, cancellationToken);
    }

    /// <summary>
    /// The files of a dataset-config's merge, as one dataset: every class the config produces, with the images of all
    /// its datasets. A file name that occurs in more than one of a class's datasets gets the dataset's column number as
    /// a prefix (<c>2-D2019..._00012.png</c>). Priorities are not kept: they only order <c>--class-max</c> in local mode.
    /// </summary>
    public static IReadOnlyList<ImageToUpload> FilesOfConfig(string configPath)
    {
        var perClass = new SortedDictionary<string, List<(int Column, string Path)>>(StringComparer.Ordinal);
        foreach (var column in DatasetConfig.Load(configPath).ListColumns(DatasetConfig.ClassFoldersNextTo(configPath)))
        {
            foreach (var (className, images) in column.Taken)
            {
                if (!perClass.TryGetValue(className, out var list))
                    perClass[className] = list = [];
                list.AddRange(images.Select(path => (column.Column + 1, path)));
            }
        }
        var files = new List<ImageToUpload>();
        foreach (var (className, images) in perClass)
        {
            var clashes = images.GroupBy(i => Path.GetFileName(i.Path), StringComparer.Ordinal)
                .Where(g => g.Select(i => i.Column).Distinct().Count() > 1).Select(g => g.Key).ToHashSet(StringComparer.Ordinal);
            files.AddRange(images.Select(i =>
            {
                var fileName = Path.GetFileName(i.Path);
                return new ImageToUpload(className, clashes.Contains(fileName) ? $"{i.Column}-{fileName}" : fileName, i.Path);
            }));
        }
        if (files.Count == 0)
            throw new InvalidDataException($"The dataset-config {configPath} selects no images.");
        return files;
    }

    /// <summary>
    /// Uploads <paramref name="files"/> as the new generation of dataset <paramref name="name"/>. If another upload (or a
    /// delete) of the same dataset finishes while this one runs, the server answers Aborted and nothing changed.
    /// </summary>
    /// <param name="filesDone">Reports (files sent, total files).</param>
    /// <exception cref="ArgumentException">An invalid dataset, class or file name (checked before anything is sent).</exception>
    public static async Task<DatasetInfo> UploadFilesAsync(Datasets.DatasetsClient client, string name, IReadOnlyList<ImageToUpload> files,
        Metadata? headers = null, IProgress<(int Done, int Total)>? filesDone = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(files);
        // The server checks the same rules; checking first fails fast, before any byte is sent.
        ResourceName.ValidateDatasetName(name);
        foreach (var file in files)
        {
            ResourceName.ValidateClassName(file.ClassName);
            ResourceName.ValidateFileName(file.FileName);
        }
        var duplicate = files.GroupBy(f => (f.ClassName, f.FileName)).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new InvalidDataException($"Two files would both be {duplicate.Key.ClassName}/{duplicate.Key.FileName}: " +
                $"{string.Join(", ", duplicate.Select(f => f.LocalPath))}.");
        using var call = client.Upload(headers, cancellationToken: cancellationToken);
        var upload = new UploadStream<DatasetUploadChunk, DatasetInfo>(call, cancellationToken);
        await upload.WriteAsync(new DatasetUploadChunk { Header = new DatasetUploadHeader { Name = name } });
        var buffer = new byte[ChunkSize];
        var done = 0;
        foreach (var file in files.OrderBy(f => f.ClassName, StringComparer.Ordinal).ThenBy(f => f.FileName, StringComparer.Ordinal))
        {
            if (!await SendFileAsync(upload, file.ClassName, file.FileName, file.LocalPath, buffer, cancellationToken))
                break;
            filesDone?.Report((++done, files.Count));
        }
        return await upload.CompleteAsync();
    }

    /// <summary>
    /// Streams one file as DatasetFileChunks of at most <see cref="ChunkSize"/> bytes, the last one marked (an empty file
    /// is one empty chunk); false when the server answered before it was all sent.
    /// </summary>
    internal static async Task<bool> SendFileAsync<TResponse>(UploadStream<DatasetUploadChunk, TResponse> stream, string className,
        string fileName, string path, byte[] buffer, CancellationToken cancellationToken)
    {
        await using var file = File.OpenRead(path);
        while (true)
        {
            var read = await file.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken);
            var last = file.Position == file.Length;
            var sent = await stream.WriteAsync(new DatasetUploadChunk
            {
                File = new DatasetFileChunk
                {
                    ClassName = className, FileName = fileName, Data = ByteString.CopyFrom(buffer, 0, read), Last = last,
                },
            });
            if (!sent)
                return false;
            if (last)
                return true;
        }
    }
}
