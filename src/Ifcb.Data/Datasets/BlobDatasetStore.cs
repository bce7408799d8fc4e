using Azure;
using Azure.Storage.Blobs;
using Ifcb.Data.Datasets.Shards;
using Ifcb.Platform;

namespace Ifcb.Data.Datasets;

/// <summary>
/// Datasets in a blob container, stored as generations so that no reader ever sees a half-written dataset, each
/// generation packed in shards. Under <c>datasets/{name}/</c>:
/// <list type="bullet">
/// <item><c>shards/{sha256}.tar</c> and <c>shards/{sha256}.index.json</c>: the images, in canonical order, packed in tar
/// files of about <see cref="DatasetStoreOptions.ShardBytes"/> (64 MiB) named by their SHA-256, each with an index of
/// its members (name, offset, size, SHA-256). Shards are shared by the dataset's generations, and their boundaries
/// depend on the images, so a re-upload sends only the shards that hold changed images (the upload's "uploaded N,
/// unchanged M").</item>
/// <item><c>generations/{generation}.json</c>: each generation's manifest (format 3): its shards and a summary (images
/// per class, bytes) — no per-image listing, so it stays small at a million images. Written once, just before the
/// generation becomes current.</item>
/// <item><c>manifest.json</c>: the current generation's manifest, plus the generations retired within the grace period.
/// An upload stores its shards and its generation, then replaces manifest.json with <c>If-Match</c> the ETag it read
/// when it began (<c>If-None-Match: *</c> for a new name). If another upload or a delete got there first, the upload
/// fails with Aborted and nothing a reader can see has changed; an interrupted upload likewise leaves only unreferenced
/// shards behind, and running it again stores only the shards it had not stored yet.</item>
/// </list>
/// Readers: a worker opens a dataset into its <see cref="ShardCache"/> (<see cref="OpenAsync"/>: whole shards, fetched
/// once per worker and shared by its jobs); NormStats streams just the images of its share by ranged reads
/// (<see cref="StreamImages"/>).
/// <para>Garbage collection (after every upload and delete, and <see cref="CollectGarbageAsync(CancellationToken)"/> for all
/// datasets) deletes the generations retired more than <see cref="DatasetStoreOptions.GarbageGrace"/> ago and the
/// shards no live generation references, but never a blob modified within the grace period, and only with
/// <c>If-Match</c> the ETag it listed. An upload renews (rewrites the metadata of) every shard it reuses, and renews all
/// its shards every quarter of the grace period while it runs, so a collector working from an older manifest cannot
/// delete content the upload is about to make current (see <see cref="DatasetUploadSession"/>). The
/// guarantee: every image a manifest names exists while that manifest is current and for at least the grace period after
/// it was replaced or deleted, so a job that read it keeps reading it if it finishes within the grace period; later it
/// gets a "re-uploaded or deleted" error, never wrong bytes.</para>
/// <para>Delete replaces manifest.json with a tombstone first (the dataset vanishes at once); its shards are collected
/// after the grace period like a replaced generation's, and the tombstone with them.</para>
/// <para>Datasets stored before shards — format 1 (images at <c>{class}/{file}</c>) and format 2 (one
/// <c>objects/{sha256}</c> blob per image) — are still read: <see cref="StreamImages"/> reads their images one blob
/// each, and <see cref="OpenAsync"/> converts them once, on first use, into a sharded generation with the same
/// fingerprint; their old blobs are then collected like a retired generation's.</para>
/// </summary>
/// <remarks>
/// This class checks the inputs and hands the work to parts that each do one job: <see cref="DatasetManifests"/> (the
/// manifests), <see cref="DatasetShards"/> (the shards), <see cref="DatasetImages"/> (images of the older layouts),
/// <see cref="DatasetUploadSession"/> and <see cref="DatasetGarbageCollector"/>; <see cref="DatasetLayout"/> names the blobs.
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
    private readonly DatasetShards _shards;
    private readonly DatasetGarbageCollector _collector;

    public BlobDatasetStore(BlobContainerClient container, DatasetStoreOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(container);
        _container = container;
        _options = options ?? new DatasetStoreOptions();
        if (_options.GarbageGrace <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(options),
                "The garbage grace period must be positive: it is what keeps a replaced generation readable.");
        if (_options.ShardBytes <= 0 || _options.ShardBoundaryOneIn <= 0)
            throw new ArgumentOutOfRangeException(nameof(options), "The shard size and the boundary bucket count must be positive.");
        _manifests = new DatasetManifests(container);
        _images = new DatasetImages(container, _options);
        _shards = new DatasetShards(container, _options);
        _collector = new DatasetGarbageCollector(container, _options, _manifests);
    }

    public DatasetStoreOptions Options => _options;

    public static string ManifestBlobName(string dataset) => DatasetLayout.ManifestBlobName(dataset);

    /// <summary>The blob holding content with this SHA-256 (lowercase hex) in <paramref name="dataset"/>.</summary>
    public static string ObjectBlobName(string dataset, string sha256) => DatasetLayout.ObjectBlobName(dataset, sha256);

    public static string GenerationBlobName(string dataset, string generation) => DatasetLayout.GenerationBlobName(dataset, generation);

    /// <summary>An image's blob in a dataset stored before generations, <c>datasets/{name}/{class}/{file}</c>.</summary>
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
    /// of dataset <paramref name="name"/>, packed in shards, sending only the shards not stored yet, and makes it current
    /// if the dataset is still as <paramref name="basedOn"/> found it (default: as it was when this call began).
    /// <paramref name="filesDone"/> counts the files whose shard is stored.
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

        var head = basedOn ?? await ReadHeadAsync(name, cancellationToken).ConfigureAwait(false);
        return await UploadFilesAsync(head, local, parallelism, filesDone, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Starts an upload of dataset <paramref name="name"/> whose images arrive one at a time (the Upload RPC): add them
    /// in canonical order with <see cref="DatasetUploadSession.AddAsync"/>, then commit. It becomes current only if the
    /// dataset is still as <paramref name="basedOn"/> found it (default: as it is now).
    /// </summary>
    /// <param name="filesDone">Counts the files whose shard is stored.</param>
    /// <param name="cancellationToken">Cancels the whole upload (a cancelled session cannot commit).</param>
    public async Task<DatasetUploadSession> BeginUploadAsync(string name, DatasetHead? basedOn = null, int parallelism = 8,
        IProgress<int>? filesDone = null, CancellationToken cancellationToken = default)
    {
        ResourceName.ValidateDatasetName(name);
        if (basedOn is not null && basedOn.Name != name)
            throw new ArgumentException($"The upload is based on dataset {basedOn.Name}, not {name}.", nameof(basedOn));
        await _container.CreateIfNotExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        var head = basedOn ?? await ReadHeadAsync(name, cancellationToken).ConfigureAwait(false);
        return new DatasetUploadSession(name, head, _options, _manifests, _shards, _collector, parallelism, filesDone, cancellationToken);
    }

    // Local files (checked names) through one session, read in canonical order.
    private async Task<DatasetUploadResult> UploadFilesAsync(DatasetHead head,
        IReadOnlyList<(string Class, string File, string Path)> files, int parallelism, IProgress<int>? filesDone,
        CancellationToken cancellationToken)
    {
        var ordered = files.OrderBy(f => f.Class, StringComparer.Ordinal).ThenBy(f => f.File, StringComparer.Ordinal).ToList();
        await using var session = await BeginUploadAsync(head.Name, head, parallelism, filesDone, cancellationToken).ConfigureAwait(false);
        foreach (var (className, fileName, path) in ordered)
        {
            await session.AddAsync(className, fileName, await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false),
                cancellationToken).ConfigureAwait(false);
        }
        return await session.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads a dataset's current manifest with its listing: for a sharded dataset, from its shards' indexes (checked
    /// against the manifest's fingerprint), each file naming its shard and offset. Holds every file in memory (about
    /// 200 bytes each); for counts, use <see cref="DescribeAsync"/>.
    /// </summary>
    /// <exception cref="KeyNotFoundException">No dataset of that name in this container.</exception>
    /// <exception cref="InvalidDataException">The stored listing does not match the manifest.</exception>
    public async Task<DatasetManifest> GetManifestAsync(string name, CancellationToken cancellationToken = default)
    {
        var stored = await _manifests.ReadCurrentAsync(name, cancellationToken).ConfigureAwait(false);
        return stored.IsSharded ? await ReadListingAsync(stored, cancellationToken).ConfigureAwait(false) : stored.ToManifest();
    }

    /// <summary>A dataset's counts and identity, from its manifest's summary: one small read at any size.</summary>
    /// <exception cref="KeyNotFoundException">No dataset of that name.</exception>
    public async Task<DatasetDescription> DescribeAsync(string name, CancellationToken cancellationToken = default) =>
        (await _manifests.ReadCurrentAsync(name, cancellationToken).ConfigureAwait(false)).Describe();

    private async Task<DatasetManifest> ReadListingAsync(StoredManifest stored, CancellationToken cancellationToken)
    {
        var shards = stored.Shards!;
        var indexes = new ShardIndex[shards.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, shards.Count), DatasetImages.Parallelism(8, cancellationToken), async (i, token) =>
            indexes[i] = await _shards.ReadIndexAsync(stored.Name, shards[i], token).ConfigureAwait(false))
            .ConfigureAwait(false);
        var files = new List<DatasetFile>(indexes.Sum(x => x.Members.Count));
        using var fingerprint = new DatasetFingerprint();
        foreach (var index in indexes)
        {
            foreach (var member in index.Members)
            {
                var file = member.ToDatasetFile(index.Shard);
                fingerprint.Add(file);
                files.Add(file);
            }
        }
        var computed = fingerprint.Complete();
        if (computed != stored.Fingerprint)
            throw new InvalidDataException($"Dataset {stored.Name}: its shards' indexes give fingerprint {computed}, the manifest " +
                $"{stored.Fingerprint}; the stored dataset was altered. Re-upload it.");
        var classes = files.Select(f => f.Class).Distinct(StringComparer.Ordinal).ToList();
        return new DatasetManifest(stored.Name, classes, files, stored.Fingerprint) { Generation = stored.Generation };
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
    /// <returns>What the deleted dataset was.</returns>
    /// <exception cref="KeyNotFoundException">No dataset of that name.</exception>
    /// <exception cref="IfcbException">Aborted: uploads kept replacing the dataset while it was being deleted.</exception>
    public async Task<DatasetDescription> DeleteAsync(string name, CancellationToken cancellationToken = default)
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
            return stored.Describe();
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
    /// Makes every shard of a dataset local in <paramref name="cache"/> (downloading, <paramref name="parallelism"/> at a
    /// time, only those the cache lacks; a shard another job on this worker is fetching is waited for, not fetched again)
    /// and pins them until the result is disposed. A dataset stored before shards is converted first, once (see the
    /// class remarks; needs write access).
    /// </summary>
    /// <exception cref="KeyNotFoundException">No dataset of that name, or a shard collected meanwhile (see the class remarks).</exception>
    /// <exception cref="InvalidDataException">A shard or index does not match the manifest.</exception>
    public async Task<CachedDataset> OpenAsync(string name, ShardCache cache, int parallelism = 4,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(cache);
        var (stored, etag) = await _manifests.ReadAsync(name, cancellationToken).ConfigureAwait(false);
        int? convertedFrom = null;
        if (stored is { Deleted: false, IsSharded: false })
        {
            convertedFrom = stored.FormatVersion;
            stored = await ConvertAsync(stored, etag, cancellationToken).ConfigureAwait(false);
        }
        if (stored is not { Deleted: false })
            throw new KeyNotFoundException(
                $"Dataset \"{name}\" does not exist in container \"{_container.Name}\"; upload it first or check the name.");
        var manifest = await ReadListingAsync(stored, cancellationToken).ConfigureAwait(false);
        var shards = stored.Shards!;
        var leases = new ShardLease?[shards.Count];
        try
        {
            await Parallel.ForEachAsync(Enumerable.Range(0, shards.Count), DatasetImages.Parallelism(parallelism, cancellationToken),
                async (i, token) => leases[i] = await cache.AcquireAsync(shards[i].Sha256, shards[i].Bytes,
                    (target, t) => _shards.DownloadAsync(name, shards[i].Sha256, target, t), token)
                    .ConfigureAwait(false))
                .ConfigureAwait(false);
        }
        catch
        {
            foreach (var lease in leases)
                lease?.Dispose();
            throw;
        }
        return new CachedDataset(manifest, leases!, DateTimeOffset.UtcNow, convertedFrom);
    }

    /// <summary>
    /// Starts reading <paramref name="files"/> (from a listing read earlier, e.g. a NormStats job's image list) and
    /// returns at once: each image can be decoded as soon as its bytes are in, while the rest download. Images of a
    /// sharded dataset come by ranged reads, one per run of neighbouring images in a shard; images of the older layouts
    /// one blob each. Every image is checked against its SHA-256. Works for a generation while it is current and for the
    /// grace period after it was replaced.
    /// </summary>
    /// <remarks>Errors (an image gone after the grace period, altered bytes) fault <see cref="StreamedImages.Completion"/>
    /// and every image not read yet.</remarks>
    public StreamedImages StreamImages(string dataset, IReadOnlyList<DatasetFile> files, int parallelism = 4,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(files);
        var streamed = new StreamedImages(dataset, files.Select(f => f.Key));
        var reads = StreamedImages.Plan(files, MaxRangeGap);
        streamed.Requests = reads.Count;
        streamed.Completion = Task.Run(async () =>
        {
            try
            {
                await Parallel.ForEachAsync(reads, DatasetImages.Parallelism(parallelism, cancellationToken), async (read, token) =>
                {
                    if (read.Shard is null)
                    {
                        var file = read.Members[0];
                        streamed.Deliver(file.Key, await _images.DownloadVerifiedAsync(dataset, file.Class, file.File, file.Sha256,
                            legacyFirst: false, token).ConfigureAwait(false));
                        return;
                    }
                    await using var range = await _shards.OpenRangeAsync(dataset, read.Shard, read.Offset, read.Length, token)
                        .ConfigureAwait(false);
                    await streamed.DeliverRangeAsync(range, read, token).ConfigureAwait(false);
                }).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                streamed.FailRemaining(e);
                throw;
            }
        }, CancellationToken.None);
        return streamed;
    }

    /// <summary>Neighbouring images of a shard at most this far apart (other images between them) are read in one request.</summary>
    private const long MaxRangeGap = 1024 * 1024;

    /// <summary>
    /// Downloads one image of a manifest read earlier and checks its SHA-256: from its object (format 2) or its blob
    /// (format 1). Works while the image's generation is current and for the grace period after it was replaced.
    /// </summary>
    /// <exception cref="KeyNotFoundException">
    /// The image is gone: its dataset was re-uploaded or deleted longer than the grace period ago.
    /// </exception>
    /// <exception cref="InvalidDataException">The stored bytes do not have that SHA-256.</exception>
    public Task<byte[]> DownloadImageAsync(string dataset, string className, string fileName, string sha256,
        CancellationToken cancellationToken = default) =>
        _images.DownloadVerifiedAsync(dataset, className, fileName, sha256, legacyFirst: false, cancellationToken);

    /// <summary>
    /// Stores a dataset of format 1 or 2 as a sharded generation with the same content and fingerprint (its images
    /// downloaded once into a temporary folder, then uploaded as shards); if another upload got there first, that one
    /// stands. Returns the manifest now current.
    /// </summary>
    private async Task<StoredManifest?> ConvertAsync(StoredManifest stored, ETag? etag, CancellationToken cancellationToken)
    {
        var manifest = stored.ToManifest();
        var folder = Directory.CreateTempSubdirectory("ifcb-convert-");
        try
        {
            var files = new List<(string Class, string File, string Path)>(manifest.Files.Count);
            foreach (var file in manifest.Files)
                files.Add((file.Class, file.File, Path.Combine(folder.FullName, file.Class, file.File)));
            foreach (var className in manifest.Classes)
                Directory.CreateDirectory(Path.Combine(folder.FullName, className));
            await Parallel.ForEachAsync(manifest.Files.Zip(files), DatasetImages.Parallelism(8, cancellationToken), async (pair, token) =>
                await File.WriteAllBytesAsync(pair.Second.Path, await _images.DownloadVerifiedAsync(manifest.Name, pair.First.Class,
                    pair.First.File, pair.First.Sha256, legacyFirst: manifest.Generation is null, token).ConfigureAwait(false), token)
                    .ConfigureAwait(false)).ConfigureAwait(false);
            // Every image was checked against its hash, so the sharded listing, hence the fingerprint, is the same.
            await UploadFilesAsync(new DatasetHead(manifest.Name, etag, stored), files, 8, null, cancellationToken).ConfigureAwait(false);
        }
        catch (IfcbException e) when (e.Kind == ErrorKind.Aborted)
        {
            // another upload (or a delete) replaced it meanwhile: read what is current now
        }
        finally
        {
            folder.Delete(recursive: true);
        }
        return (await _manifests.ReadAsync(manifest.Name, cancellationToken).ConfigureAwait(false)).Stored;
    }
}
