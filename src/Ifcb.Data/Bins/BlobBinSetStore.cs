using System.Security.Cryptography;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Ifcb.Data.Datasets;
using Ifcb.Platform;

namespace Ifcb.Data.Bins;

/// <summary>One file of a bin set: its name (<c>{lid}.adc|.hdr|.roi</c>), size in bytes and lowercase hex SHA-256.</summary>
public sealed record BinSetFile(string File, long Size, string Sha256);

/// <summary>
/// A bin set's listing, written last by its upload: the set exists exactly when this does. <see cref="ClaimedBy"/> is
/// the RUN job that owns the set (null until a run claims it).
/// </summary>
public sealed record BinSetListing(string Id, string Name, DateTimeOffset CreatedAt, IReadOnlyList<BinSetFile> Files)
{
    public string? ClaimedBy { get; init; }
    public DateTimeOffset? ClaimedAt { get; init; }
    public long Bytes => Files.Sum(f => f.Size);
}

/// <summary>
/// Sets of raw IFCB bins in blob storage, the input of platform RUN jobs: <c>binsets/{id}/{lid}.{adc|hdr|roi}</c> and
/// <c>binsets/{id}/listing.json</c>. Every upload gets a fresh id chosen here, <c>{name}-{12 hex digits}</c>, so two
/// uploads with one name (a reused RUN_ID, two users) never share or overwrite each other's bins. The listing is
/// written last, after the files are checked to be stored: a set without it does not exist, so a reader never sees a
/// half-uploaded set. A set belongs to one run: <see cref="ClaimAsync"/> records the run in the listing with
/// <c>If-Match</c>, and another run cannot claim it. The run deletes its set when it ends (<see cref="DeleteAsync"/>);
/// sets never claimed, and uploads that never finished, are collected by <see cref="DeleteUnclaimedOlderThanAsync"/>.
/// Sets stored before listings existed (<c>binsets/{RUN_ID}/…</c>) do not exist in this sense and are collected too.
/// </summary>
public sealed class BlobBinSetStore(BlobContainerClient container)
{
    public const string Prefix = "binsets/";
    public const string ListingFileName = "listing.json";
    private const int IdSuffixHexDigits = 12;
    private const int MaxClaimAttempts = 5;
    private static readonly string[] Extensions = [".adc", ".hdr", ".roi"];
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

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

    /// <summary>A fresh set id for an upload named <paramref name="name"/>: the name (cut to fit) and 12 random hex digits, itself a valid set name.</summary>
    /// <exception cref="ArgumentException">Invalid name.</exception>
    public static string NewId(string name)
    {
        ResourceName.ValidateDatasetName(name);
        var stem = name[..Math.Min(name.Length, ResourceName.MaxDatasetNameLength - 1 - IdSuffixHexDigits)];
        return $"{stem}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(IdSuffixHexDigits / 2))}";
    }

    private static string Folder(string binSet) => $"{Prefix}{ResourceName.ValidateDatasetName(binSet)}/";

    private static string ListingBlobName(string binSet) => Folder(binSet) + ListingFileName;

    private static DateTimeOffset Now => DateTimeOffset.UtcNow;

    /// <summary>Starts an upload into a new set; send its files to the writer, then commit it (dispose it either way).</summary>
    /// <exception cref="ArgumentException">Invalid name.</exception>
    public async Task<BinSetWriter> BeginUploadAsync(string name, UploadLimits limits, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(limits);
        var id = NewId(name);
        await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        return new BinSetWriter(container, id, name, limits);
    }

    private async Task<(BinSetListing? Listing, ETag ETag)> ReadListingAsync(string binSet, CancellationToken cancellationToken)
    {
        var blobName = ListingBlobName(binSet);
        try
        {
            var content = await container.GetBlobClient(blobName).DownloadContentAsync(cancellationToken).ConfigureAwait(false);
            BinSetListing? listing;
            try
            {
                listing = JsonSerializer.Deserialize<BinSetListing>(content.Value.Content.ToMemory().Span, Json);
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{container.Name}/{blobName} is not a bin-set listing: {e.Message}", e);
            }
            if (listing is null || listing.Id != binSet || listing.Files is null)
                throw new InvalidDataException($"{container.Name}/{blobName} is not the listing of bin set {binSet}.");
            return (listing, content.Value.Details.ETag);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return (null, default);
        }
    }

    private static KeyNotFoundException NotFound(string binSet) => new(
        $"Bin set '{binSet}' does not exist (never uploaded, its upload did not finish, or its run ended and it was deleted); " +
        "upload the bins with Datasets.UploadBins (ifcb run --remote does) and pass the id it returns.");

    /// <summary>The set's listing.</summary>
    /// <exception cref="KeyNotFoundException">No (complete) bin set with that id.</exception>
    public async Task<BinSetListing> GetAsync(string binSet, CancellationToken cancellationToken) =>
        (await ReadListingAsync(binSet, cancellationToken).ConfigureAwait(false)).Listing ?? throw NotFound(binSet);

    /// <summary>The set's files and sizes.</summary>
    /// <exception cref="KeyNotFoundException">No (complete) bin set with that id.</exception>
    public async Task<IReadOnlyList<(string File, long Size)>> ListAsync(string set, CancellationToken cancellationToken) =>
        [.. (await GetAsync(set, cancellationToken).ConfigureAwait(false)).Files.Select(f => (f.File, f.Size))];

    /// <summary>Downloads the set into <paramref name="directory"/> (one flat folder of bin files), checking each file's size and SHA-256.</summary>
    /// <exception cref="KeyNotFoundException">No (complete) bin set with that id.</exception>
    /// <exception cref="InvalidDataException">A stored file does not match the listing.</exception>
    public async Task<int> DownloadAsync(string set, string directory, CancellationToken cancellationToken)
    {
        var listing = await GetAsync(set, cancellationToken).ConfigureAwait(false);
        Directory.CreateDirectory(directory);
        await Parallel.ForEachAsync(listing.Files, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken }, async (file, token) =>
        {
            var path = Path.Combine(directory, ValidateFileName(file.File));
            try
            {
                await container.GetBlobClient(Folder(set) + file.File).DownloadToAsync(path, token).ConfigureAwait(false);
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                throw new InvalidDataException($"Bin set {set} lost {file.File} (deleted while its run was reading it); upload the bins again.", e);
            }
            await using var stored = File.OpenRead(path);
            var hash = Convert.ToHexStringLower(await SHA256.HashDataAsync(stored, token).ConfigureAwait(false));
            if (stored.Length != file.Size || hash != file.Sha256)
                throw new InvalidDataException($"{file.File} of bin set {set} has {stored.Length} bytes, SHA-256 {hash}; its listing says {file.Size} bytes, {file.Sha256}. Upload the bins again.");
        }).ConfigureAwait(false);
        return listing.Files.Count;
    }

    /// <summary>
    /// Makes the set belong to RUN job <paramref name="runJobId"/>, atomically. Claiming again for the same job (a
    /// redelivered message) succeeds; for any other job it fails.
    /// </summary>
    /// <exception cref="KeyNotFoundException">No (complete) bin set with that id.</exception>
    /// <exception cref="IfcbException">FailedPrecondition: the set belongs to another run (the message names it).</exception>
    public async Task<BinSetListing> ClaimAsync(string binSet, string runJobId, CancellationToken cancellationToken = default)
    {
        ResourceName.ValidateModelName(runJobId, "run job id");
        for (var attempt = 1; attempt <= MaxClaimAttempts; attempt++)
        {
            var (listing, etag) = await ReadListingAsync(binSet, cancellationToken).ConfigureAwait(false);
            if (listing is null)
                throw NotFound(binSet);
            if (listing.ClaimedBy == runJobId)
                return listing;
            if (listing.ClaimedBy is { } owner)
                throw IfcbException.FailedPrecondition(
                    $"Bin set {binSet} belongs to run {owner}: a bin set is classified only by the run it was uploaded for. " +
                    "Upload the bins again (ifcb run --remote does) and start this run with the new bin set id.");
            var claimed = listing with { ClaimedBy = runJobId, ClaimedAt = Now };
            try
            {
                await container.GetBlobClient(ListingBlobName(binSet)).UploadAsync(BinaryData.FromBytes(JsonSerializer.SerializeToUtf8Bytes(claimed, Json)),
                    new BlobUploadOptions { Conditions = new BlobRequestConditions { IfMatch = etag } }, cancellationToken).ConfigureAwait(false);
                return claimed;
            }
            catch (RequestFailedException e) when (e.Status is 404 or 409 or 412)
            {
                // Claimed or deleted meanwhile: look again.
            }
        }
        throw IfcbException.Aborted($"Bin set {binSet} kept changing while run {runJobId} claimed it; start the run again.");
    }

    /// <summary>Deletes a set: its listing first (so it vanishes at once), then its files. For the run that owns it, when the run ends.</summary>
    /// <returns>The number of blobs deleted (0 when the set was already gone).</returns>
    public async Task<int> DeleteAsync(string binSet, CancellationToken cancellationToken = default)
    {
        var deleted = 0;
        if ((await container.DeleteBlobIfExistsAsync(ListingBlobName(binSet), cancellationToken: cancellationToken).ConfigureAwait(false)).Value)
            deleted++;
        try
        {
            await foreach (var blob in container.GetBlobsAsync(new GetBlobsOptions { Prefix = Folder(binSet) }, cancellationToken).ConfigureAwait(false))
            {
                if ((await container.DeleteBlobIfExistsAsync(blob.Name, cancellationToken: cancellationToken).ConfigureAwait(false)).Value)
                    deleted++;
            }
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
        }
        return deleted;
    }

    /// <summary>Every complete set, claimed or not, in id order (for a reconciler that deletes the sets of ended runs).</summary>
    public async Task<IReadOnlyList<BinSetListing>> ListSetsAsync(CancellationToken cancellationToken = default)
    {
        var sets = new List<BinSetListing>();
        foreach (var id in await ListIdsAsync(cancellationToken).ConfigureAwait(false))
        {
            if ((await ReadListingAsync(id, cancellationToken).ConfigureAwait(false)).Listing is { } listing)
                sets.Add(listing);
        }
        return sets;
    }

    /// <summary>
    /// Garbage collection: deletes every set that no run has claimed and that was uploaded more than
    /// <paramref name="age"/> ago, and the files of uploads that never finished (no listing, nothing written for that
    /// long). A run claiming a set at the same moment wins or loses atomically: the listing is deleted only with
    /// <c>If-Match</c> the unclaimed listing's ETag.
    /// </summary>
    /// <returns>The number of sets (complete or not) deleted.</returns>
    public async Task<int> DeleteUnclaimedOlderThanAsync(TimeSpan age, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(age, TimeSpan.Zero);
        var cutoff = Now - age;
        var deleted = 0;
        foreach (var id in await ListIdsAsync(cancellationToken).ConfigureAwait(false))
        {
            BinSetListing? listing;
            ETag etag;
            try
            {
                (listing, etag) = await ReadListingAsync(id, cancellationToken).ConfigureAwait(false);
            }
            catch (InvalidDataException)
            {
                continue; // a damaged listing is left for a person to look at
            }
            if (listing is not null)
            {
                if (listing.ClaimedBy is not null || listing.CreatedAt >= cutoff)
                    continue;
                try
                {
                    await container.DeleteBlobAsync(ListingBlobName(id), conditions: new BlobRequestConditions { IfMatch = etag }, cancellationToken: cancellationToken)
                        .ConfigureAwait(false);
                }
                catch (RequestFailedException e) when (e.Status is 404 or 409 or 412)
                {
                    continue; // claimed or deleted meanwhile
                }
                await DeleteAsync(id, cancellationToken).ConfigureAwait(false);
                deleted++;
                continue;
            }
            var blobs = new List<BlobItem>();
            await foreach (var blob in container.GetBlobsAsync(new GetBlobsOptions { Prefix = Folder(id) }, cancellationToken).ConfigureAwait(false))
                blobs.Add(blob);
            if (blobs.Count == 0 || blobs.Any(b => b.Properties.LastModified >= cutoff))
                continue; // an upload still writing
            foreach (var blob in blobs)
            {
                try
                {
                    await container.DeleteBlobIfExistsAsync(blob.Name, conditions: new BlobRequestConditions { IfMatch = blob.Properties.ETag }, cancellationToken: cancellationToken)
                        .ConfigureAwait(false);
                }
                catch (RequestFailedException e) when (e.Status is 409 or 412)
                {
                }
            }
            deleted++;
        }
        return deleted;
    }

    private async Task<IReadOnlyList<string>> ListIdsAsync(CancellationToken cancellationToken)
    {
        var ids = new List<string>();
        try
        {
            await foreach (var item in container.GetBlobsByHierarchyAsync(new GetBlobsByHierarchyOptions { Prefix = Prefix, Delimiter = "/" }, cancellationToken).ConfigureAwait(false))
            {
                if (item.IsPrefix && item.Prefix[Prefix.Length..].TrimEnd('/') is var id && ResourceName.IsValidDatasetName(id))
                    ids.Add(id);
            }
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
        }
        return ids.Order(StringComparer.Ordinal).ToList();
    }

    internal static byte[] Serialize(BinSetListing listing) => JsonSerializer.SerializeToUtf8Bytes(listing, Json);
}

/// <summary>
/// One bin-set upload in progress (see <see cref="BlobBinSetStore.BeginUploadAsync"/>): files arrive chunk by chunk, one file
/// after another, as Datasets.UploadBins receives them, each streamed straight to its blob and counted against the
/// upload's limits; <see cref="CommitAsync"/> writes the listing. Disposing an uncommitted writer deletes what it wrote.
/// </summary>
public sealed class BinSetWriter : IAsyncDisposable
{
    private const int ChunkBytes = 256 * 1024;
    private readonly BlobContainerClient _container;
    private readonly UploadBudget _budget;
    private readonly List<BinSetFile> _files = [];
    private OpenFile? _open;
    private bool _committed;

    internal BinSetWriter(BlobContainerClient container, string id, string name, UploadLimits limits)
    {
        _container = container;
        Id = id;
        Name = name;
        _budget = new UploadBudget(limits, "bin set upload", " (a bin set is flat: every bin lid may appear once)");
    }

    /// <summary>The set's id, chosen by the store: what StartRun takes as bin_set.</summary>
    public string Id { get; }

    /// <summary>The name the client gave (a RUN_ID): only a label.</summary>
    public string Name { get; }

    private string BlobName(string file) => $"{BlobBinSetStore.Prefix}{Id}/{file}";

    /// <summary>Stores one chunk of <paramref name="fileName"/>; <paramref name="last"/> ends the file (so does a chunk of another file).</summary>
    /// <exception cref="ArgumentException">Not a bin file name.</exception>
    /// <exception cref="IfcbException">InvalidArgument: a file sent twice, or a limit exceeded (the message names it).</exception>
    public async Task WriteAsync(string fileName, ReadOnlyMemory<byte> data, bool last, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_committed, this);
        BlobBinSetStore.ValidateFileName(fileName);
        if (_open is not null && _open.File != fileName)
            await CloseAsync(cancellationToken).ConfigureAwait(false);
        _budget.Add(fileName, data.Length);
        if (_open is null)
        {
            var stream = await _container.GetBlockBlobClient(BlobName(fileName)).OpenWriteAsync(overwrite: true, cancellationToken: cancellationToken).ConfigureAwait(false);
            _open = new OpenFile(fileName, stream, IncrementalHash.CreateHash(HashAlgorithmName.SHA256));
        }
        await _open.Stream.WriteAsync(data, cancellationToken).ConfigureAwait(false);
        _open.Hash.AppendData(data.Span);
        _open.Size += data.Length;
        if (last)
            await CloseAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stores a whole file from a stream.</summary>
    public async Task AddFileAsync(string fileName, Stream content, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        var buffer = new byte[ChunkBytes];
        int read;
        while ((read = await content.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false)) > 0)
            await WriteAsync(fileName, buffer.AsMemory(0, read), last: false, cancellationToken).ConfigureAwait(false);
        await WriteAsync(fileName, ReadOnlyMemory<byte>.Empty, last: true, cancellationToken).ConfigureAwait(false);
    }

    private async Task CloseAsync(CancellationToken cancellationToken)
    {
        var open = _open!;
        _open = null;
        await open.Stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        await open.Stream.DisposeAsync().ConfigureAwait(false);
        _files.Add(new BinSetFile(open.File, open.Size, Convert.ToHexStringLower(open.Hash.GetHashAndReset())));
        open.Hash.Dispose();
        _budget.EndFile();
    }

    /// <summary>Checks that every file is stored, then writes the listing: from now on the set exists.</summary>
    /// <exception cref="IfcbException">InvalidArgument: no files; Aborted: a file vanished from storage meanwhile (upload again).</exception>
    public async Task<BinSetListing> CommitAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_committed, this);
        if (_open is not null)
            await CloseAsync(cancellationToken).ConfigureAwait(false);
        if (_files.Count == 0)
            throw IfcbException.InvalidArgument("The bin set upload has no files; send each bin's .adc, .hdr and .roi.");
        var stored = new Dictionary<string, long>(StringComparer.Ordinal);
        var folder = $"{BlobBinSetStore.Prefix}{Id}/";
        await foreach (var blob in _container.GetBlobsAsync(new GetBlobsOptions { Prefix = folder }, cancellationToken).ConfigureAwait(false))
            stored[blob.Name[folder.Length..]] = blob.Properties.ContentLength ?? -1;
        foreach (var file in _files)
        {
            if (!stored.TryGetValue(file.File, out var size) || size != file.Size)
                throw IfcbException.Aborted($"{file.File} of bin set {Id} is not in storage as sent (collected while the upload stalled?); upload the bins again.");
        }
        var listing = new BinSetListing(Id, Name, DateTimeOffset.UtcNow, [.. _files.OrderBy(f => f.File, StringComparer.Ordinal)]);
        await _container.GetBlobClient(folder + BlobBinSetStore.ListingFileName).UploadAsync(BinaryData.FromBytes(BlobBinSetStore.Serialize(listing)),
            new BlobUploadOptions { Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All } }, cancellationToken).ConfigureAwait(false);
        _committed = true;
        return listing;
    }

    public async ValueTask DisposeAsync()
    {
        if (_committed)
            return;
        _committed = true;
        if (_open is not null)
        {
            _open.Hash.Dispose();
            try
            {
                await _open.Stream.DisposeAsync().ConfigureAwait(false);
            }
            catch (RequestFailedException)
            {
            }
            _open = null;
        }
        try
        {
            await foreach (var blob in _container.GetBlobsAsync(new GetBlobsOptions { Prefix = $"{BlobBinSetStore.Prefix}{Id}/" }).ConfigureAwait(false))
                await _container.DeleteBlobIfExistsAsync(blob.Name).ConfigureAwait(false);
        }
        catch (RequestFailedException)
        {
            // Left for DeleteUnclaimedOlderThanAsync: without a listing the files are not a set.
        }
    }

    private sealed class OpenFile(string file, Stream stream, IncrementalHash hash)
    {
        public string File { get; } = file;
        public Stream Stream { get; } = stream;
        public IncrementalHash Hash { get; } = hash;
        public long Size { get; set; }
    }
}
