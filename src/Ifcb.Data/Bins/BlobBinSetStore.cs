using System.Security.Cryptography;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Ifcb.Data.Datasets;
using Ifcb.Platform;
using Ifcb.Platform.Storage;

namespace Ifcb.Data.Bins;

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

    private readonly BlobDocumentStore _listings = new(container, Json);

    /// <summary>Checks a file name: <c>{bin lid}.adc|.hdr|.roi</c>.</summary>
    /// <exception cref="ArgumentException">Not a bin file name (the message says what is expected).</exception>
    public static string ValidateFileName(string fileName)
    {
        ResourceName.ValidateFileName(fileName);
        var extension = Path.GetExtension(fileName);
        if (!Extensions.Contains(extension, StringComparer.Ordinal) || !BinId.TryParse(Path.GetFileNameWithoutExtension(fileName), out _))
            throw new ArgumentException(
                $"'{fileName}' is not an IFCB bin file: expected DYYYYMMDDTHHMMSS_IFCBnnn or IFCBn_YYYY_DDD_HHMMSS " +
                "with .adc, .hdr or .roi.");
        return fileName;
    }

    /// <summary>
    /// A fresh set id for an upload named <paramref name="name"/>: the name (cut to fit) and 12 random hex digits,
    /// itself a valid set name.
    /// </summary>
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
        return new BinSetWriter(_listings, id, name, limits);
    }

    private async Task<(BinSetListing? Listing, ETag ETag)> ReadListingAsync(string binSet, CancellationToken cancellationToken)
    {
        var blobName = ListingBlobName(binSet);
        if (await _listings.ReadAsync<BinSetListing>(blobName, cancellationToken).ConfigureAwait(false) is not { } stored)
            return (null, default);
        if (stored.Value.Id != binSet || stored.Value.Files is null)
            throw new InvalidDataException($"{container.Name}/{blobName} is not the listing of bin set {binSet}.");
        return (stored.Value, stored.ETag);
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

    /// <summary>
    /// Downloads the set into <paramref name="directory"/> (one flat folder of bin files), checking each file's size
    /// and SHA-256.
    /// </summary>
    /// <exception cref="KeyNotFoundException">No (complete) bin set with that id.</exception>
    /// <exception cref="InvalidDataException">A stored file does not match the listing.</exception>
    public async Task<int> DownloadAsync(string set, string directory, CancellationToken cancellationToken)
    {
        var listing = await GetAsync(set, cancellationToken).ConfigureAwait(false);
        Directory.CreateDirectory(directory);
        await Parallel.ForEachAsync(listing.Files,
            new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken }, async (file, token) =>
        {
            var path = Path.Combine(directory, ValidateFileName(file.File));
            try
            {
                await container.GetBlobClient(Folder(set) + file.File).DownloadToAsync(path, token).ConfigureAwait(false);
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                throw new InvalidDataException(
                    $"Bin set {set} lost {file.File} (deleted while its run was reading it); upload the bins again.", e);
            }
            await using var stored = File.OpenRead(path);
            var hash = Convert.ToHexStringLower(await SHA256.HashDataAsync(stored, token).ConfigureAwait(false));
            if (stored.Length != file.Size || hash != file.Sha256)
                throw new InvalidDataException($"{file.File} of bin set {set} has {stored.Length} bytes, SHA-256 {hash}; " +
                    $"its listing says {file.Size} bytes, {file.Sha256}. Upload the bins again.");
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
            var written = await _listings.TryReplaceAsync(ListingBlobName(binSet), claimed, etag, cancellationToken).ConfigureAwait(false);
            if (written is not null)
                return claimed;
            // Claimed or deleted meanwhile: look again.
        }
        throw IfcbException.Aborted($"Bin set {binSet} kept changing while run {runJobId} claimed it; start the run again.");
    }

    /// <summary>
    /// Deletes a set: its listing first (so it vanishes at once), then its files. For the run that owns it, when the
    /// run ends.
    /// </summary>
    /// <returns>The number of blobs deleted (0 when the set was already gone).</returns>
    public async Task<int> DeleteAsync(string binSet, CancellationToken cancellationToken = default)
    {
        var deleted = 0;
        if ((await container.DeleteBlobIfExistsAsync(ListingBlobName(binSet), cancellationToken: cancellationToken)
            .ConfigureAwait(false)).Value)
            deleted++;
        try
        {
            await foreach (var blob in container.GetBlobsAsync(new GetBlobsOptions { Prefix = Folder(binSet) }, cancellationToken)
                .ConfigureAwait(false))
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
                    await container.DeleteBlobAsync(ListingBlobName(id), conditions: new BlobRequestConditions { IfMatch = etag },
                        cancellationToken: cancellationToken).ConfigureAwait(false);
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
            await foreach (var blob in container.GetBlobsAsync(new GetBlobsOptions { Prefix = Folder(id) }, cancellationToken)
                .ConfigureAwait(false))
                blobs.Add(blob);
            if (blobs.Count == 0 || blobs.Any(b => b.Properties.LastModified >= cutoff))
                continue; // an upload still writing
            foreach (var blob in blobs)
            {
                try
                {
                    await container.DeleteBlobIfExistsAsync(blob.Name,
                        conditions: new BlobRequestConditions { IfMatch = blob.Properties.ETag }, cancellationToken: cancellationToken)
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
            await foreach (var item in container
                .GetBlobsByHierarchyAsync(new GetBlobsByHierarchyOptions { Prefix = Prefix, Delimiter = "/" }, cancellationToken)
                .ConfigureAwait(false))
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
}
