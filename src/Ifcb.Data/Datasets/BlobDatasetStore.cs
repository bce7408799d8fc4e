using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Ifcb.Data.Loading;
using Ifcb.Platform;

namespace Ifcb.Data.Datasets;

/// <summary>How long replaced or deleted dataset content stays readable (see <see cref="BlobDatasetStore"/>).</summary>
public sealed record DatasetStoreOptions
{
    public static readonly TimeSpan DefaultGarbageGrace = TimeSpan.FromHours(1);

    /// <summary>
    /// A generation stays readable for this long after it was replaced or deleted, and no blob modified within this
    /// period is ever collected. Longer than the longest download of a whole dataset by a job (Materialize, NormStats).
    /// </summary>
    public TimeSpan GarbageGrace { get; init; } = DefaultGarbageGrace;
}

/// <summary>
/// A dataset name as an upload found it when it began (no dataset, a tombstone, or a generation, with its ETag). The
/// upload becomes current only if the name is still in exactly this state, so of two overlapping uploads one fails.
/// </summary>
public sealed class DatasetHead
{
    internal DatasetHead(string name, ETag? etag, StoredManifest? stored)
    {
        Name = name;
        ETag = etag;
        Stored = stored;
    }

    public string Name { get; }

    /// <summary>The generation that was current; null when the dataset did not exist (or was deleted).</summary>
    public string? Generation => Stored?.CurrentGeneration;

    internal ETag? ETag { get; }
    internal StoredManifest? Stored { get; }
}

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
public sealed partial class BlobDatasetStore
{
    public const string Prefix = "datasets/";
    public const string ManifestFileName = "manifest.json";
    public const string HashMetadataKey = "sha256";
    private const string ObjectsFolder = "objects/";
    private const string GenerationsFolder = "generations/";
    private const string StateMetadataKey = "state";
    private const string DeletedState = "deleted";
    private const string CurrentState = "current";
    private const string GenerationMetadataKey = "generation";
    private const int MaxDeleteAttempts = 5;
    private const int MaxRenewalPasses = 3;
    private static readonly BlobHttpHeaders JsonHeaders = new() { ContentType = "application/json" };

    private readonly BlobContainerClient _container;
    private readonly DatasetStoreOptions _options;

    public BlobDatasetStore(BlobContainerClient container, DatasetStoreOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(container);
        _container = container;
        _options = options ?? new DatasetStoreOptions();
        if (_options.GarbageGrace <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(options), "The garbage grace period must be positive: it is what keeps a replaced generation readable.");
    }

    public DatasetStoreOptions Options => _options;

    public static string ManifestBlobName(string dataset) => $"{Root(dataset)}{ManifestFileName}";

    /// <summary>The blob holding content with this SHA-256 (lowercase hex) in <paramref name="dataset"/>.</summary>
    public static string ObjectBlobName(string dataset, string sha256) =>
        Sha256Pattern().IsMatch(sha256)
            ? $"{Root(dataset)}{ObjectsFolder}{sha256}"
            : throw new ArgumentException($"'{sha256}' is not a SHA-256 (64 lowercase hex digits).", nameof(sha256));

    public static string GenerationBlobName(string dataset, string generation) =>
        GenerationPattern().IsMatch(generation)
            ? $"{Root(dataset)}{GenerationsFolder}{generation}.json"
            : throw new ArgumentException($"'{generation}' is not a dataset generation id.", nameof(generation));

    /// <summary>
    /// An image's path in the store, <c>datasets/{name}/{class}/{file}</c>: the key <see cref="LoadIntoMemoryAsync"/>
    /// gives it, and the blob that holds it in a dataset stored before generations.
    /// </summary>
    public static string ImagePath(string dataset, string className, string fileName) =>
        $"{Root(dataset)}{ResourceName.ValidateClassName(className)}/{ResourceName.ValidateFileName(fileName)}";

    private static string Root(string dataset) => $"{Prefix}{ResourceName.ValidateDatasetName(dataset)}/";

    private static DateTimeOffset Now => DateTimeOffset.UtcNow;

    private string GraceText => _options.GarbageGrace >= TimeSpan.FromMinutes(1)
        ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{_options.GarbageGrace.TotalMinutes:0.#} min")
        : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{_options.GarbageGrace.TotalSeconds:0.#} s");

    /// <summary>Reads the state an upload to <paramref name="name"/> will be based on; pass it to <see cref="UploadFromFolderAsync"/>.</summary>
    /// <exception cref="ArgumentException">Invalid dataset name.</exception>
    public async Task<DatasetHead> ReadHeadAsync(string name, CancellationToken cancellationToken = default)
    {
        var (stored, etag) = await ReadStoredAsync(name, cancellationToken).ConfigureAwait(false);
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
        var renewedAt = Now;
        var objects = new ConcurrentDictionary<string, Lazy<Task<bool>>>(StringComparer.Ordinal);
        var pathOfObject = new ConcurrentDictionary<string, string>(StringComparer.Ordinal);
        var entries = new ConcurrentBag<DatasetFile>();
        var uploaded = 0;
        var present = 0;
        var done = 0;
        await Parallel.ForEachAsync(local, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism), CancellationToken = cancellationToken },
            async (item, token) =>
            {
                var bytes = await File.ReadAllBytesAsync(item.Path, token).ConfigureAwait(false);
                var hash = Convert.ToHexStringLower(SHA256.HashData(bytes));
                pathOfObject.TryAdd(hash, item.Path);
                var existed = await objects.GetOrAdd(hash, h => new Lazy<Task<bool>>(() => PutObjectAsync(name, h, bytes, token))).Value.ConfigureAwait(false);
                if (existed)
                    Interlocked.Increment(ref present);
                else
                    Interlocked.Increment(ref uploaded);
                entries.Add(new DatasetFile(item.Class, item.File, bytes.LongLength, hash));
                filesDone?.Report(Interlocked.Increment(ref done));
            }).ConfigureAwait(false);

        // The first objects were renewed when the upload began; if that is long ago, renew them all again so that none
        // can reach the collector's age before the flip below. A renewal pass must itself be quick against the grace period.
        for (var pass = 1; Now - renewedAt > _options.GarbageGrace / 2; pass++)
        {
            if (pass > MaxRenewalPasses)
                throw IfcbException.Unavailable(
                    $"Renewing the {pathOfObject.Count} stored images of this upload took longer than half the {GraceText} grace period " +
                    $"{MaxRenewalPasses} times; storage is too slow right now. Upload again later.");
            renewedAt = Now;
            await RenewObjectsAsync(name, pathOfObject, parallelism, cancellationToken).ConfigureAwait(false);
        }

        var manifest = DatasetManifest.Create(name, entries);
        var now = Now;
        var generation = NewGenerationId(now);
        var stored = StoredManifest.ForGeneration(manifest, generation, now, head.Stored?.RetiredAfterReplacing(now, _options.GarbageGrace) ?? []);
        var generationBlob = _container.GetBlobClient(GenerationBlobName(name, generation));
        await generationBlob.UploadAsync(BinaryData.FromBytes((stored with { Retired = [] }).ToJson()),
            new BlobUploadOptions { HttpHeaders = JsonHeaders, Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All } }, cancellationToken).ConfigureAwait(false);
        try
        {
            await _container.GetBlobClient(ManifestBlobName(name)).UploadAsync(BinaryData.FromBytes(stored.ToJson()), new BlobUploadOptions
            {
                HttpHeaders = JsonHeaders,
                Metadata = new Dictionary<string, string> { [StateMetadataKey] = CurrentState, [GenerationMetadataKey] = generation },
                Conditions = head.ETag is { } etag ? new BlobRequestConditions { IfMatch = etag } : new BlobRequestConditions { IfNoneMatch = ETag.All },
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (RequestFailedException e) when (e.Status is 404 or 409 or 412)
        {
            await TryDeleteAsync(generationBlob.Name, etag: null, CancellationToken.None).ConfigureAwait(false); // else collected later
            throw new IfcbException(ErrorKind.Aborted,
                $"Dataset {name} changed while this upload was running: another upload of dataset {name} finished first (or it was deleted), " +
                "so this upload did not replace it. Check `ifcb dataset show`, then upload again to make these files the dataset.", e);
        }

        var kept = manifest.Files.Select(f => (f.Class, f.File)).ToHashSet();
        var removed = head.Stored is { Deleted: false } previous ? previous.Files.Count(f => !kept.Contains((f.Class, f.File))) : 0;
        await CollectGarbageAfterCommitAsync(name, cancellationToken).ConfigureAwait(false);
        return new DatasetUploadResult(manifest with { Generation = generation }, uploaded, present, removed);
    }

    /// <summary>Stores one object unless the dataset already has it (then renews it); true when it was there already.</summary>
    private async Task<bool> PutObjectAsync(string name, string hash, byte[] bytes, CancellationToken token)
    {
        var blob = _container.GetBlobClient(ObjectBlobName(name, hash));
        if (await RenewAsync(blob, hash, token).ConfigureAwait(false))
            return true;
        try
        {
            await blob.UploadAsync(BinaryData.FromBytes(bytes), new BlobUploadOptions
            {
                Metadata = new Dictionary<string, string> { [HashMetadataKey] = hash },
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
    /// Rewrites an object's metadata, which gives it a new ETag and Last-Modified: a collector skips it for the next grace
    /// period, and one that listed it before fails its conditional delete. False when the object does not exist.
    /// </summary>
    private static async Task<bool> RenewAsync(BlobClient blob, string hash, CancellationToken token)
    {
        try
        {
            await blob.SetMetadataAsync(new Dictionary<string, string> { [HashMetadataKey] = hash }, cancellationToken: token).ConfigureAwait(false);
            return true;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return false;
        }
    }

    private async Task RenewObjectsAsync(string name, IReadOnlyDictionary<string, string> pathOfObject, int parallelism, CancellationToken cancellationToken) =>
        await Parallel.ForEachAsync(pathOfObject, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism), CancellationToken = cancellationToken },
            async (item, token) =>
            {
                if (await RenewAsync(_container.GetBlobClient(ObjectBlobName(name, item.Key)), item.Key, token).ConfigureAwait(false))
                    return;
                var bytes = await File.ReadAllBytesAsync(item.Value, token).ConfigureAwait(false);
                if (Convert.ToHexStringLower(SHA256.HashData(bytes)) != item.Key)
                    throw new InvalidDataException($"{item.Value} changed while it was being uploaded; upload again.");
                await PutObjectAsync(name, item.Key, bytes, token).ConfigureAwait(false);
            }).ConfigureAwait(false);

    private static string NewGenerationId(DateTimeOffset now) =>
        $"{now.UtcDateTime:yyyyMMdd'T'HHmmssfff'Z'}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";

    [GeneratedRegex("^[0-9]{8}T[0-9]{9}Z-[0-9a-f]{8}$")]
    private static partial Regex GenerationPattern();

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex Sha256Pattern();

    private async Task<(StoredManifest? Stored, ETag? ETag)> ReadStoredAsync(string name, CancellationToken cancellationToken)
    {
        var blobName = ManifestBlobName(name);
        try
        {
            var content = await _container.GetBlobClient(blobName).DownloadContentAsync(cancellationToken).ConfigureAwait(false);
            return (StoredManifest.Parse(content.Value.Content.ToMemory().Span, $"{_container.Name}/{blobName}"), content.Value.Details.ETag);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return (null, null);
        }
    }

    private async Task<StoredManifest> ReadCurrentAsync(string name, CancellationToken cancellationToken)
    {
        var (stored, _) = await ReadStoredAsync(name, cancellationToken).ConfigureAwait(false);
        return stored is { Deleted: false }
            ? stored
            : throw new KeyNotFoundException($"Dataset \"{name}\" does not exist in container \"{_container.Name}\"; upload it first or check the name.");
    }

    /// <summary>Reads a dataset's current manifest.</summary>
    /// <exception cref="KeyNotFoundException">No dataset of that name in this container.</exception>
    public async Task<DatasetManifest> GetManifestAsync(string name, CancellationToken cancellationToken = default) =>
        (await ReadCurrentAsync(name, cancellationToken).ConfigureAwait(false)).ToManifest();

    /// <exception cref="KeyNotFoundException">No dataset of that name.</exception>
    public async Task<DatasetDescription> DescribeAsync(string name, CancellationToken cancellationToken = default)
    {
        var m = await GetManifestAsync(name, cancellationToken).ConfigureAwait(false);
        return new DatasetDescription(m.Name, m.Fingerprint, m.CountPerClass, m.Files.Count, m.TotalBytes);
    }

    /// <summary>Names of the current datasets (those with a manifest that is not a tombstone), ordinal order. An absent container has none.</summary>
    public async Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken = default)
    {
        var names = new List<string>();
        await foreach (var name in ListNamesAsync(cancellationToken).ConfigureAwait(false))
        {
            try
            {
                var properties = await _container.GetBlobClient(ManifestBlobName(name)).GetPropertiesAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
                if (!(properties.Value.Metadata.TryGetValue(StateMetadataKey, out var state) && state == DeletedState))
                    names.Add(name);
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
            }
        }
        return names.Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>Every valid dataset name with any blob under it (current, deleted, or an upload that never finished).</summary>
    private async IAsyncEnumerable<string> ListNamesAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var pages = _container.GetBlobsByHierarchyAsync(new GetBlobsByHierarchyOptions { Prefix = Prefix, Delimiter = "/" }, cancellationToken).ConfigureAwait(false);
        await using var items = pages.GetAsyncEnumerator();
        while (true)
        {
            try
            {
                if (!await items.MoveNextAsync())
                    yield break;
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                yield break; // no container yet
            }
            if (items.Current is { IsPrefix: true } item && item.Prefix[Prefix.Length..].TrimEnd('/') is var name && ResourceName.IsValidDatasetName(name))
                yield return name;
        }
    }

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
            var (stored, etag) = await ReadStoredAsync(name, cancellationToken).ConfigureAwait(false);
            if (stored is not { Deleted: false })
                throw new KeyNotFoundException($"Dataset \"{name}\" does not exist in container \"{_container.Name}\"; nothing to delete.");
            var tombstone = StoredManifest.Tombstone(name, stored.RetiredAfterReplacing(Now, _options.GarbageGrace));
            try
            {
                await _container.GetBlobClient(ManifestBlobName(name)).UploadAsync(BinaryData.FromBytes(tombstone.ToJson()), new BlobUploadOptions
                {
                    HttpHeaders = JsonHeaders,
                    Metadata = new Dictionary<string, string> { [StateMetadataKey] = DeletedState },
                    Conditions = new BlobRequestConditions { IfMatch = etag },
                }, cancellationToken).ConfigureAwait(false);
            }
            catch (RequestFailedException e) when (e.Status is 404 or 409 or 412)
            {
                continue; // an upload replaced it meanwhile: delete what is current now
            }
            await CollectGarbageAfterCommitAsync(name, cancellationToken).ConfigureAwait(false);
            return stored.ToManifest();
        }
        throw new IfcbException(ErrorKind.Aborted, $"Dataset {name} was replaced by other uploads {MaxDeleteAttempts} times while deleting it; delete it again.");
    }

    /// <summary>Collection is housekeeping: once the upload or delete is committed, a failed or cancelled sweep is left to the next one.</summary>
    private async Task CollectGarbageAfterCommitAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            await CollectGarbageAsync(name, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RequestFailedException or InvalidDataException or OperationCanceledException)
        {
        }
    }

    /// <summary>Collects garbage in every dataset (see <see cref="CollectGarbageAsync(string, CancellationToken)"/>); for a periodic sweep.</summary>
    /// <returns>The number of blobs deleted.</returns>
    public async Task<int> CollectGarbageAsync(CancellationToken cancellationToken = default)
    {
        var deleted = 0;
        await foreach (var name in ListNamesAsync(cancellationToken).ConfigureAwait(false))
        {
            try
            {
                deleted += await CollectGarbageAsync(name, cancellationToken).ConfigureAwait(false);
            }
            catch (InvalidDataException)
            {
                // A damaged manifest: keep that dataset's blobs for a person to look at, and sweep the others.
            }
        }
        return deleted;
    }

    /// <summary>
    /// Deletes the blobs of <paramref name="name"/> that no live generation needs (the current one, and those retired
    /// within the grace period) and that were not modified within the grace period: objects, generation manifests, the
    /// image blobs of the layout before generations, and finally a tombstone with nothing left to protect.
    /// </summary>
    /// <returns>The number of blobs deleted.</returns>
    public async Task<int> CollectGarbageAsync(string name, CancellationToken cancellationToken)
    {
        var cutoff = Now - _options.GarbageGrace;
        var (stored, etag) = await ReadStoredAsync(name, cancellationToken).ConfigureAwait(false);
        var live = new HashSet<string>(StringComparer.Ordinal);
        var referenced = new HashSet<string>(StringComparer.Ordinal);
        if (stored is not null)
        {
            if (stored.CurrentGeneration is { } current)
            {
                live.Add(current);
                referenced.UnionWith(stored.Files.Select(f => f.Sha256));
            }
            foreach (var retired in stored.Retired.Where(r => r.RetiredAt > cutoff))
            {
                live.Add(retired.Generation);
                if (retired.Generation == StoredManifest.LegacyGeneration)
                    continue;
                var generationBlob = GenerationBlobName(name, retired.Generation);
                try
                {
                    var content = await _container.GetBlobClient(generationBlob).DownloadContentAsync(cancellationToken).ConfigureAwait(false);
                    referenced.UnionWith(StoredManifest.Parse(content.Value.Content.ToMemory().Span, generationBlob).Files.Select(f => f.Sha256));
                }
                catch (RequestFailedException e) when (e.Status == 404)
                {
                    return 0; // cannot tell what that generation still needs: keep everything
                }
            }
        }

        var root = Root(name);
        var deleted = 0;
        var remaining = 0;
        await foreach (var blob in _container.GetBlobsAsync(new GetBlobsOptions { Prefix = root }, cancellationToken).ConfigureAwait(false))
        {
            var relative = blob.Name[root.Length..];
            if (relative == ManifestFileName)
                continue;
            var garbage = relative.StartsWith(ObjectsFolder, StringComparison.Ordinal) && Sha256Pattern().IsMatch(relative[ObjectsFolder.Length..])
                ? !referenced.Contains(relative[ObjectsFolder.Length..])
                : relative.StartsWith(GenerationsFolder, StringComparison.Ordinal) && relative.EndsWith(".json", StringComparison.Ordinal) &&
                  GenerationPattern().IsMatch(relative[GenerationsFolder.Length..^".json".Length])
                    ? !live.Contains(relative[GenerationsFolder.Length..^".json".Length])
                    : !live.Contains(StoredManifest.LegacyGeneration);
            if (garbage && blob.Properties.LastModified < cutoff && await TryDeleteAsync(blob.Name, blob.Properties.ETag, cancellationToken).ConfigureAwait(false))
                deleted++;
            else
                remaining++;
        }
        if (stored is { Deleted: true } && live.Count == 0 && remaining == 0 && await TryDeleteAsync(ManifestBlobName(name), etag, cancellationToken).ConfigureAwait(false))
            deleted++;
        return deleted;
    }

    /// <summary>Deletes a blob only if it still has the ETag the caller saw; false when it changed or is gone (or, without an ETag, on any storage error).</summary>
    private async Task<bool> TryDeleteAsync(string blobName, ETag? etag, CancellationToken cancellationToken)
    {
        try
        {
            var response = await _container.DeleteBlobIfExistsAsync(blobName, conditions: etag is { } e ? new BlobRequestConditions { IfMatch = e } : null,
                cancellationToken: cancellationToken).ConfigureAwait(false);
            return response.Value;
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412 || etag is null)
        {
            return false;
        }
    }

    /// <summary>
    /// Downloads a dataset into <c>{cacheRoot}/{fingerprint}/{class}/{file}</c>. Content-addressed by fingerprint, so a
    /// cached copy is reused as long as its files still have the manifest's hashes; each download is verified.
    /// </summary>
    /// <exception cref="KeyNotFoundException">No dataset of that name, or an image collected meanwhile (see the class remarks).</exception>
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
    public async Task<(IReadOnlyDictionary<string, IReadOnlyList<string>> ImagesPerClass, InMemoryImageSource Source, DatasetManifest Manifest)> LoadIntoMemoryAsync(
        string name, int parallelism = 8, CancellationToken cancellationToken = default)
    {
        var manifest = await GetManifestAsync(name, cancellationToken).ConfigureAwait(false);
        var contents = new ConcurrentDictionary<string, byte[]>(StringComparer.Ordinal);
        await Parallel.ForEachAsync(manifest.Files, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism), CancellationToken = cancellationToken },
            async (file, token) => contents[ImagePath(name, file.Class, file.File)] = await DownloadVerifiedAsync(manifest, file, token).ConfigureAwait(false))
            .ConfigureAwait(false);
        var perClass = manifest.Files.GroupBy(f => f.Class, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => (IReadOnlyList<string>)g.Select(f => ImagePath(name, f.Class, f.File)).ToList(), StringComparer.Ordinal);
        return (perClass, new InMemoryImageSource(contents), manifest);
    }

    /// <summary>
    /// Downloads one image of a manifest read earlier (e.g. a NormStats job's image list) and checks its SHA-256. Works
    /// for both layouts, while the image's generation is current and for the grace period after it was replaced.
    /// </summary>
    /// <exception cref="KeyNotFoundException">The image is gone: its dataset was re-uploaded or deleted longer than the grace period ago.</exception>
    /// <exception cref="InvalidDataException">The stored bytes do not have that SHA-256.</exception>
    public Task<byte[]> DownloadImageAsync(string dataset, string className, string fileName, string sha256, CancellationToken cancellationToken = default) =>
        DownloadVerifiedAsync(dataset, className, fileName, sha256, legacyFirst: false, cancellationToken);

    private Task<byte[]> DownloadVerifiedAsync(DatasetManifest manifest, DatasetFile file, CancellationToken token) =>
        DownloadVerifiedAsync(manifest.Name, file.Class, file.File, file.Sha256, legacyFirst: manifest.Generation is null, token);

    private async Task<byte[]> DownloadVerifiedAsync(string dataset, string className, string fileName, string sha256, bool legacyFirst, CancellationToken token)
    {
        var objectBlob = ObjectBlobName(dataset, sha256);
        var legacyBlob = ImagePath(dataset, className, fileName);
        var (first, second) = legacyFirst ? (legacyBlob, objectBlob) : (objectBlob, legacyBlob);
        var blobName = first;
        var bytes = await TryDownloadAsync(first, token).ConfigureAwait(false);
        if (bytes is null)
        {
            blobName = second;
            bytes = await TryDownloadAsync(second, token).ConfigureAwait(false)
                ?? throw new KeyNotFoundException(
                    $"Image {className}/{fileName} of dataset {dataset} is gone: the dataset was re-uploaded or deleted more than " +
                    $"{GraceText} ago. Start again to read its current version.");
        }
        var hash = Convert.ToHexStringLower(SHA256.HashData(bytes));
        if (hash != sha256)
            throw new InvalidDataException($"Blob {_container.Name}/{blobName} has SHA-256 {hash} but the manifest says {sha256}; the stored image was altered. Re-upload the dataset.");
        return bytes;
    }

    private async Task<byte[]?> TryDownloadAsync(string blobName, CancellationToken token)
    {
        try
        {
            return (await _container.GetBlobClient(blobName).DownloadContentAsync(token).ConfigureAwait(false)).Value.Content.ToArray();
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }
}
