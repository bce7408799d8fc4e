using System.Collections.Concurrent;
using System.Security.Cryptography;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Ifcb.Data.Loading;
using Ifcb.Platform;

namespace Ifcb.Data.Datasets;

/// <summary>
/// Datasets in a blob container: image blobs <c>datasets/{name}/{class}/{file}</c> (metadata <c>sha256</c>) and a
/// manifest blob <c>datasets/{name}/manifest.json</c>. The manifest is written last on upload and deleted first on
/// delete, so a dataset exists exactly when its manifest does, and an interrupted upload is simply resumed.
/// </summary>
public sealed class BlobDatasetStore
{
    public const string Prefix = "datasets/";
    public const string ManifestFileName = "manifest.json";
    public const string HashMetadataKey = "sha256";

    private readonly BlobContainerClient _container;

    public BlobDatasetStore(BlobContainerClient container)
    {
        ArgumentNullException.ThrowIfNull(container);
        _container = container;
    }

    public static string ManifestBlobName(string dataset) => $"{Prefix}{ResourceName.ValidateDatasetName(dataset)}/{ManifestFileName}";

    public static string ImageBlobName(string dataset, string className, string fileName) =>
        $"{Prefix}{ResourceName.ValidateDatasetName(dataset)}/{ResourceName.ValidateClassName(className)}/{ResourceName.ValidateFileName(fileName)}";

    /// <summary>
    /// Uploads a local folder of class subfolders (image files as in <see cref="ImageFileTypes"/>), skipping files whose
    /// blob already carries the same SHA-256, removing blobs of files no longer present, then writing the manifest.
    /// </summary>
    /// <exception cref="ArgumentException">Invalid dataset, class or file name (message says which and why).</exception>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">The folder has no images.</exception>
    public async Task<DatasetUploadResult> UploadFromFolderAsync(string name, string localFolder, int parallelism = 8,
        IProgress<int>? filesDone = null, CancellationToken cancellationToken = default)
    {
        ResourceName.ValidateDatasetName(name);
        var perClass = DatasetSpec.ListClassFolders(localFolder);
        var local = new List<(string Class, string File, string Path)>();
        foreach (var (className, files) in perClass)
        {
            ResourceName.ValidateClassName(className);
            foreach (var path in files)
                local.Add((className, ResourceName.ValidateFileName(Path.GetFileName(path)), path));
        }
        if (local.Count == 0)
            throw new InvalidDataException($"{Path.GetFullPath(localFolder)} has no images in class subfolders; nothing to upload.");

        await _container.CreateIfNotExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        var entries = new ConcurrentBag<DatasetFile>();
        var uploaded = 0;
        var present = 0;
        var done = 0;
        await Parallel.ForEachAsync(local, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism), CancellationToken = cancellationToken },
            async (item, token) =>
            {
                var bytes = await File.ReadAllBytesAsync(item.Path, token).ConfigureAwait(false);
                var hash = Convert.ToHexStringLower(SHA256.HashData(bytes));
                var blob = _container.GetBlobClient(ImageBlobName(name, item.Class, item.File));
                if (await ExistingHashAsync(blob, token).ConfigureAwait(false) == hash)
                    Interlocked.Increment(ref present);
                else
                {
                    await blob.UploadAsync(BinaryData.FromBytes(bytes), new BlobUploadOptions { Metadata = new Dictionary<string, string> { [HashMetadataKey] = hash } }, token)
                        .ConfigureAwait(false);
                    Interlocked.Increment(ref uploaded);
                }
                entries.Add(new DatasetFile(item.Class, item.File, bytes.LongLength, hash));
                filesDone?.Report(Interlocked.Increment(ref done));
            }).ConfigureAwait(false);

        var manifest = DatasetManifest.Create(name, entries);
        var keep = manifest.Files.Select(f => ImageBlobName(name, f.Class, f.File)).Append(ManifestBlobName(name)).ToHashSet(StringComparer.Ordinal);
        var removed = 0;
        await foreach (var item in _container.GetBlobsAsync(new GetBlobsOptions { Prefix = $"{Prefix}{name}/" }, cancellationToken).ConfigureAwait(false))
        {
            if (keep.Contains(item.Name))
                continue;
            await _container.DeleteBlobIfExistsAsync(item.Name, cancellationToken: cancellationToken).ConfigureAwait(false);
            removed++;
        }
        await _container.GetBlobClient(ManifestBlobName(name)).UploadAsync(BinaryData.FromBytes(manifest.ToJson()), overwrite: true, cancellationToken).ConfigureAwait(false);
        return new DatasetUploadResult(manifest, uploaded, present, removed);
    }

    private static async Task<string?> ExistingHashAsync(BlobClient blob, CancellationToken token)
    {
        try
        {
            var properties = await blob.GetPropertiesAsync(cancellationToken: token).ConfigureAwait(false);
            return properties.Value.Metadata.TryGetValue(HashMetadataKey, out var h) ? h : null;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>Reads a dataset's manifest.</summary>
    /// <exception cref="KeyNotFoundException">No dataset of that name in this container.</exception>
    public async Task<DatasetManifest> GetManifestAsync(string name, CancellationToken cancellationToken = default)
    {
        var blobName = ManifestBlobName(name);
        try
        {
            var content = await _container.GetBlobClient(blobName).DownloadContentAsync(cancellationToken).ConfigureAwait(false);
            return DatasetManifest.FromJson(content.Value.Content.ToMemory().Span, $"{_container.Name}/{blobName}");
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new KeyNotFoundException($"Dataset \"{name}\" does not exist in container \"{_container.Name}\"; upload it first or check the name.", e);
        }
    }

    /// <exception cref="KeyNotFoundException">No dataset of that name.</exception>
    public async Task<DatasetDescription> DescribeAsync(string name, CancellationToken cancellationToken = default)
    {
        var m = await GetManifestAsync(name, cancellationToken).ConfigureAwait(false);
        return new DatasetDescription(m.Name, m.Fingerprint, m.CountPerClass, m.Files.Count, m.TotalBytes);
    }

    /// <summary>Names of the complete datasets (those with a manifest), ordinal order. An absent container has none.</summary>
    public async Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken = default)
    {
        var names = new List<string>();
        try
        {
            await foreach (var item in _container.GetBlobsByHierarchyAsync(new GetBlobsByHierarchyOptions { Prefix = Prefix, Delimiter = "/" }, cancellationToken).ConfigureAwait(false))
            {
                if (!item.IsPrefix)
                    continue;
                var name = item.Prefix[Prefix.Length..].TrimEnd('/');
                if (ResourceName.IsValidDatasetName(name) &&
                    await _container.GetBlobClient(ManifestBlobName(name)).ExistsAsync(cancellationToken).ConfigureAwait(false))
                    names.Add(name);
            }
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return [];
        }
        return names.Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>Deletes a dataset: its manifest first (so it vanishes at once), then its image blobs.</summary>
    /// <exception cref="KeyNotFoundException">No dataset of that name.</exception>
    public async Task<int> DeleteAsync(string name, CancellationToken cancellationToken = default)
    {
        var manifestBlob = ManifestBlobName(name);
        var deleted = await _container.DeleteBlobIfExistsAsync(manifestBlob, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (!deleted.Value)
            throw new KeyNotFoundException($"Dataset \"{name}\" does not exist in container \"{_container.Name}\"; nothing to delete.");
        var count = 0;
        await foreach (var item in _container.GetBlobsAsync(new GetBlobsOptions { Prefix = $"{Prefix}{name}/" }, cancellationToken).ConfigureAwait(false))
        {
            await _container.DeleteBlobIfExistsAsync(item.Name, cancellationToken: cancellationToken).ConfigureAwait(false);
            count++;
        }
        return count;
    }

    /// <summary>
    /// Downloads a dataset into <c>{cacheRoot}/{fingerprint}/{class}/{file}</c>. Content-addressed by fingerprint, so a
    /// cached copy is reused as long as its files still have the manifest's hashes; each download is verified.
    /// </summary>
    /// <exception cref="KeyNotFoundException">No dataset of that name.</exception>
    /// <exception cref="InvalidDataException">A downloaded blob does not match the manifest's hash.</exception>
    public async Task<MaterializedDataset> MaterializeAsync(string name, string cacheRoot, int parallelism = 8, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(cacheRoot);
        var manifest = await GetManifestAsync(name, cancellationToken).ConfigureAwait(false);
        var root = Path.Combine(Path.GetFullPath(cacheRoot), manifest.Fingerprint);
        var downloaded = 0;
        var reused = 0;
        await Parallel.ForEachAsync(manifest.Files, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism), CancellationToken = cancellationToken },
            async (file, token) =>
            {
                var target = Path.Combine(root, file.Class, file.File);
                if (File.Exists(target) && new FileInfo(target).Length == file.Size &&
                    Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(target, token).ConfigureAwait(false))) == file.Sha256)
                {
                    Interlocked.Increment(ref reused);
                    return;
                }
                var bytes = await DownloadVerifiedAsync(name, file, token).ConfigureAwait(false);
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                var temp = target + "." + Guid.NewGuid().ToString("N") + ".part";
                await File.WriteAllBytesAsync(temp, bytes, token).ConfigureAwait(false);
                File.Move(temp, target, overwrite: true);
                Interlocked.Increment(ref downloaded);
            }).ConfigureAwait(false);
        return new MaterializedDataset(manifest, root, downloaded, reused);
    }

    /// <summary>
    /// Reads a whole dataset into memory. Image paths are the blob names; pass the source to a <see cref="BatchLoader"/>
    /// and the per-class lists to <see cref="DatasetSpec.FromImagesPerClass"/>.
    /// </summary>
    /// <exception cref="KeyNotFoundException">No dataset of that name.</exception>
    public async Task<(IReadOnlyDictionary<string, IReadOnlyList<string>> ImagesPerClass, InMemoryImageSource Source, DatasetManifest Manifest)> LoadIntoMemoryAsync(
        string name, int parallelism = 8, CancellationToken cancellationToken = default)
    {
        var manifest = await GetManifestAsync(name, cancellationToken).ConfigureAwait(false);
        var contents = new ConcurrentDictionary<string, byte[]>(StringComparer.Ordinal);
        await Parallel.ForEachAsync(manifest.Files, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism), CancellationToken = cancellationToken },
            async (file, token) => contents[ImageBlobName(name, file.Class, file.File)] = await DownloadVerifiedAsync(name, file, token).ConfigureAwait(false))
            .ConfigureAwait(false);
        var perClass = manifest.Files.GroupBy(f => f.Class, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => (IReadOnlyList<string>)g.Select(f => ImageBlobName(name, f.Class, f.File)).ToList(), StringComparer.Ordinal);
        return (perClass, new InMemoryImageSource(contents), manifest);
    }

    private async Task<byte[]> DownloadVerifiedAsync(string name, DatasetFile file, CancellationToken token)
    {
        var blobName = ImageBlobName(name, file.Class, file.File);
        var content = await _container.GetBlobClient(blobName).DownloadContentAsync(token).ConfigureAwait(false);
        var bytes = content.Value.Content.ToArray();
        var hash = Convert.ToHexStringLower(SHA256.HashData(bytes));
        if (hash != file.Sha256)
            throw new InvalidDataException($"Blob {_container.Name}/{blobName} has SHA-256 {hash} but the manifest says {file.Sha256}; the dataset changed after its manifest was written. Re-upload it.");
        return bytes;
    }
}
