using System.Collections.Concurrent;
using Azure;
using Azure.Storage.Blobs;
using Ifcb.Data.Loading;
using Ifcb.Platform;

namespace Ifcb.Data.Datasets;

/// <summary>
/// Datasets in a blob container, stored as generations so that no reader ever sees a half-written dataset. Under
/// <c>datasets/{name}/</c>:
/// <list type="bullet">
/// <item><c>objects/{sha256}</c>: image content, addressed by its SHA-256 and shared by the dataset's generations, so a
/// re-upload sends only content not stored yet (the upload's "uploaded N, unchanged M").</item>
/// <item><c>generations/{generation}.json</c>: each generation's manifest, written once, just before it becomes current.</item>
/// <item><c>manifest.json</c>: the current generation's manifest, plus the generations retired within the grace period.
/// An upload stores its objects and its generation, then replaces manifest.json with <c>If-Match</c> the ETag it read
/// when it began (<c>If-None-Match: *</c> for a new name). If another upload or a delete got there first, the upload
/// fails with Aborted and nothing a reader can see has changed; an interrupted upload likewise leaves only unreferenced
/// objects behind.</item>
/// </list>
/// Garbage collection (after every upload and delete, and <see cref="CollectGarbageAsync(CancellationToken)"/> for all
/// datasets) deletes the generations retired more than <see cref="DatasetStoreOptions.GarbageGrace"/> ago and the
/// objects no live generation references, but never a blob modified within the grace period, and only with
/// <c>If-Match</c> the ETag it listed. An upload renews (rewrites the metadata of) every object it reuses, and renews
/// them all again when it ran longer than half the grace period, so a collector working from an older manifest cannot
/// delete content the upload is about to make current. The guarantee: every image a manifest names exists while that
/// manifest is current and for at least the grace period after it was replaced or deleted, so a job that read it keeps
/// reading it if it finishes within the grace period; later it gets a "re-uploaded or deleted" error, never wrong bytes.
/// <para>Delete replaces manifest.json with a tombstone first (the dataset vanishes at once); its images are collected
/// after the grace period like a replaced generation's, and the tombstone with them.</para>
/// <para>Datasets stored before generations (manifest format 1, images at <c>{class}/{file}</c>) are read where they
/// are, with the same manifest and fingerprint; nothing is converted on reading. Their next upload stores a generation,
/// and the old image blobs are collected like a retired generation's.</para>
/// </summary>
/// <remarks>
/// This class checks the inputs and hands the work to parts that each do one job: <see cref="DatasetManifests"/> (the
/// manifests), <see cref="DatasetImages"/> (the image content), <see cref="DatasetUploader"/> and
/// <see cref="DatasetGarbageCollector"/>; <see cref="DatasetLayout"/> names the blobs.
/// </remarks>
public sealed class BlobDatasetStore
{
    public const string Prefix = DatasetLayout.Prefix;
    public const string ManifestFileName = DatasetLayout.ManifestFileName;
    public const string HashMetadataKey = DatasetLayout.HashMetadataKey;
    private const int MaxDeleteAttempts = 5;

    private readonly BlobContainerClient _container;
    private readonly DatasetStoreOptions _options;
    private readonly DatasetManifests _manifests;
    private readonly DatasetImages _images;
    private readonly DatasetGarbageCollector _collector;
    private readonly DatasetUploader _uploader;

    public BlobDatasetStore(BlobContainerClient container, DatasetStoreOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(container);
        _container = container;
        _options = options ?? new DatasetStoreOptions();
        if (_options.GarbageGrace <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(options),
                "The garbage grace period must be positive: it is what keeps a replaced generation readable.");
        _manifests = new DatasetManifests(container);
        _images = new DatasetImages(container, _options);
        _collector = new DatasetGarbageCollector(container, _options, _manifests);
        _uploader = new DatasetUploader(_options, _manifests, _images, _collector);
    }

    public DatasetStoreOptions Options => _options;

    public static string ManifestBlobName(string dataset) => DatasetLayout.ManifestBlobName(dataset);

    /// <summary>The blob holding content with this SHA-256 (lowercase hex) in <paramref name="dataset"/>.</summary>
    public static string ObjectBlobName(string dataset, string sha256) => DatasetLayout.ObjectBlobName(dataset, sha256);

    public static string GenerationBlobName(string dataset, string generation) => DatasetLayout.GenerationBlobName(dataset, generation);

    /// <summary>
    /// An image's path in the store, <c>datasets/{name}/{class}/{file}</c>: the key <see cref="LoadIntoMemoryAsync"/>
    /// gives it, and the blob that holds it in a dataset stored before generations.
    /// </summary>
    public static string ImagePath(string dataset, string className, string fileName) =>
        DatasetLayout.ImagePath(dataset, className, fileName);

    /// <summary>
    /// Reads the state an upload to <paramref name="name"/> will be based on; pass it to
    /// <see cref="UploadFromFolderAsync"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Invalid dataset name.</exception>
    public async Task<DatasetHead> ReadHeadAsync(string name, CancellationToken cancellationToken = default)
    {
        var (stored, etag) = await _manifests.ReadAsync(name, cancellationToken).ConfigureAwait(false);
        return new DatasetHead(name, etag, stored);
    }

    /// <summary>
    /// Uploads a local folder of class subfolders (image files as in <see cref="ImageFileTypes"/>) as a new generation
    /// of dataset <paramref name="name"/>, sending only content not stored yet, and makes it current if the dataset is
    /// still as <paramref name="basedOn"/> found it (default: as it was when this call began).
    /// </summary>
    /// <exception cref="ArgumentException">Invalid dataset, class or file name (message says which and why).</exception>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">The folder has no images.</exception>
    /// <exception cref="IfcbException">Aborted: another upload (or a delete) of this dataset finished first; nothing changed.</exception>
    public async Task<DatasetUploadResult> UploadFromFolderAsync(string name, string localFolder, int parallelism = 8,
        IProgress<int>? filesDone = null, DatasetHead? basedOn = null, CancellationToken cancellationToken = default)
    {
        ResourceName.ValidateDatasetName(name);
        if (basedOn is not null && basedOn.Name != name)
            throw new ArgumentException($"The upload is based on dataset {basedOn.Name}, not {name}.", nameof(basedOn));
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
        var head = basedOn ?? await ReadHeadAsync(name, cancellationToken).ConfigureAwait(false);
        return await _uploader.UploadAsync(name, local, head, parallelism, filesDone, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads a dataset's current manifest.</summary>
    /// <exception cref="KeyNotFoundException">No dataset of that name in this container.</exception>
    public async Task<DatasetManifest> GetManifestAsync(string name, CancellationToken cancellationToken = default) =>
        (await _manifests.ReadCurrentAsync(name, cancellationToken).ConfigureAwait(false)).ToManifest();

    /// <exception cref="KeyNotFoundException">No dataset of that name.</exception>
    public async Task<DatasetDescription> DescribeAsync(string name, CancellationToken cancellationToken = default)
    {
        var m = await GetManifestAsync(name, cancellationToken).ConfigureAwait(false);
        return new DatasetDescription(m.Name, m.Fingerprint, m.CountPerClass, m.Files.Count, m.TotalBytes);
    }

    /// <summary>
    /// Names of the current datasets (those with a manifest that is not a tombstone), ordinal order. An absent
    /// container has none.
    /// </summary>
    public Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken = default) =>
        _manifests.ListCurrentAsync(cancellationToken);

    /// <summary>
    /// Deletes a dataset: a tombstone replaces its manifest first (so it vanishes at once and a concurrent upload based
    /// on it fails); its images are collected after the grace period, so jobs reading it finish.
    /// </summary>
    /// <returns>The manifest of the deleted dataset.</returns>
    /// <exception cref="KeyNotFoundException">No dataset of that name.</exception>
    /// <exception cref="IfcbException">Aborted: uploads kept replacing the dataset while it was being deleted.</exception>
    public async Task<DatasetManifest> DeleteAsync(string name, CancellationToken cancellationToken = default)
    {
        for (var attempt = 1; attempt <= MaxDeleteAttempts; attempt++)
        {
            var (stored, etag) = await _manifests.ReadAsync(name, cancellationToken).ConfigureAwait(false);
            if (stored is not { Deleted: false })
                throw new KeyNotFoundException($"Dataset \"{name}\" does not exist in container \"{_container.Name}\"; nothing to delete.");
            var tombstone = StoredManifest.Tombstone(name, stored.RetiredAfterReplacing(DateTimeOffset.UtcNow, _options.GarbageGrace));
            try
            {
                await _manifests.ReplaceAsync(name, tombstone, etag, cancellationToken).ConfigureAwait(false);
            }
            catch (RequestFailedException e) when (e.Status is 404 or 409 or 412)
            {
                continue; // an upload replaced it meanwhile: delete what is current now
            }
            await _collector.CollectAfterCommitAsync(name, cancellationToken).ConfigureAwait(false);
            return stored.ToManifest();
        }
        throw new IfcbException(ErrorKind.Aborted,
            $"Dataset {name} was replaced by other uploads {MaxDeleteAttempts} times while deleting it; delete it again.");
    }

    /// <summary>
    /// Collects garbage in every dataset (see <see cref="CollectGarbageAsync(string, CancellationToken)"/>); for a
    /// periodic sweep.
    /// </summary>
    /// <returns>The number of blobs deleted.</returns>
    public Task<int> CollectGarbageAsync(CancellationToken cancellationToken = default) => _collector.CollectAllAsync(cancellationToken);

    /// <summary>
    /// Deletes the blobs of <paramref name="name"/> that no live generation needs (the current one, and those retired
    /// within the grace period) and that were not modified within the grace period: objects, generation manifests, the
    /// image blobs of the layout before generations, and finally a tombstone with nothing left to protect.
    /// </summary>
    /// <returns>The number of blobs deleted.</returns>
    public Task<int> CollectGarbageAsync(string name, CancellationToken cancellationToken) =>
        _collector.CollectAsync(name, cancellationToken);

    /// <summary>
    /// Downloads a dataset into <c>{cacheRoot}/{fingerprint}/{class}/{file}</c>. Content-addressed by fingerprint, so a
    /// cached copy is reused as long as its files still have the manifest's hashes; each download is verified.
    /// </summary>
    /// <exception cref="KeyNotFoundException">No dataset of that name, or an image collected meanwhile (see the class remarks).</exception>
    /// <exception cref="InvalidDataException">A downloaded blob does not match the manifest's hash.</exception>
    public async Task<MaterializedDataset> MaterializeAsync(string name, string cacheRoot, int parallelism = 8,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(cacheRoot);
        var manifest = await GetManifestAsync(name, cancellationToken).ConfigureAwait(false);
        var root = Path.Combine(Path.GetFullPath(cacheRoot), manifest.Fingerprint);
        var downloaded = 0;
        var reused = 0;
        await Parallel.ForEachAsync(manifest.Files, DatasetImages.Parallelism(parallelism, cancellationToken),
            async (file, token) =>
            {
                var target = Path.Combine(root, file.Class, file.File);
                if (File.Exists(target) && new FileInfo(target).Length == file.Size &&
                    DatasetImages.Sha256(await File.ReadAllBytesAsync(target, token).ConfigureAwait(false)) == file.Sha256)
                {
                    Interlocked.Increment(ref reused);
                    return;
                }
                var bytes = await DownloadVerifiedAsync(manifest, file, token).ConfigureAwait(false);
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                var temp = target + "." + Guid.NewGuid().ToString("N") + ".part";
                await File.WriteAllBytesAsync(temp, bytes, token).ConfigureAwait(false);
                File.Move(temp, target, overwrite: true);
                Interlocked.Increment(ref downloaded);
            }).ConfigureAwait(false);
        return new MaterializedDataset(manifest, root, downloaded, reused);
    }

    /// <summary>
    /// Reads a whole dataset into memory. Image paths are <see cref="ImagePath"/>s; pass the source to a
    /// <see cref="BatchLoader"/> and the per-class lists to <see cref="DatasetSpec.FromImagesPerClass"/>.
    /// </summary>
    /// <exception cref="KeyNotFoundException">No dataset of that name.</exception>
    public async Task<(IReadOnlyDictionary<string, IReadOnlyList<string>> ImagesPerClass, InMemoryImageSource Source,
        DatasetManifest Manifest)> LoadIntoMemoryAsync(string name, int parallelism = 8, CancellationToken cancellationToken = default)
    {
        var manifest = await GetManifestAsync(name, cancellationToken).ConfigureAwait(false);
        var contents = new ConcurrentDictionary<string, byte[]>(StringComparer.Ordinal);
        await Parallel.ForEachAsync(manifest.Files, DatasetImages.Parallelism(parallelism, cancellationToken),
            async (file, token) =>
                contents[ImagePath(name, file.Class, file.File)] = await DownloadVerifiedAsync(manifest, file, token).ConfigureAwait(false))
            .ConfigureAwait(false);
        var perClass = manifest.Files.GroupBy(f => f.Class, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => (IReadOnlyList<string>)g.Select(f => ImagePath(name, f.Class, f.File)).ToList(),
                StringComparer.Ordinal);
        return (perClass, new InMemoryImageSource(contents), manifest);
    }

    /// <summary>
    /// Downloads one image of a manifest read earlier (e.g. a NormStats job's image list) and checks its SHA-256. Works
    /// for both layouts, while the image's generation is current and for the grace period after it was replaced.
    /// </summary>
    /// <exception cref="KeyNotFoundException">
    /// The image is gone: its dataset was re-uploaded or deleted longer than the grace period ago.
    /// </exception>
    /// <exception cref="InvalidDataException">The stored bytes do not have that SHA-256.</exception>
    public Task<byte[]> DownloadImageAsync(string dataset, string className, string fileName, string sha256,
        CancellationToken cancellationToken = default) =>
        _images.DownloadVerifiedAsync(dataset, className, fileName, sha256, legacyFirst: false, cancellationToken);

    private Task<byte[]> DownloadVerifiedAsync(DatasetManifest manifest, DatasetFile file, CancellationToken token) =>
        _images.DownloadVerifiedAsync(manifest.Name, file.Class, file.File, file.Sha256, legacyFirst: manifest.Generation is null, token);
}
