using System.Security.Cryptography;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Ifcb.Data.Datasets;
using Ifcb.Platform;
using Ifcb.Platform.Storage;

namespace Ifcb.Data.Bins;

/// <summary>
/// One bin-set upload in progress (see <see cref="BlobBinSetStore.BeginUploadAsync"/>): files arrive chunk by chunk, one file
/// after another, as Datasets.UploadBins receives them, each streamed straight to its blob and counted against the
/// upload's limits; <see cref="CommitAsync"/> writes the listing. Disposing an uncommitted writer deletes what it wrote.
/// </summary>
public sealed class BinSetWriter : IAsyncDisposable
{
    private const int ChunkBytes = 256 * 1024;
    private readonly BlobDocumentStore _listings;
    private readonly BlobContainerClient _container;
    private readonly UploadBudget _budget;
    private readonly List<BinSetFile> _files = [];
    private OpenFile? _open;
    private bool _committed;

    internal BinSetWriter(BlobDocumentStore listings, string id, string name, UploadLimits limits)
    {
        _listings = listings;
        _container = listings.Container;
        Id = id;
        Name = name;
        _budget = new UploadBudget(limits, "bin set upload", " (a bin set is flat: every bin lid may appear once)");
    }

    /// <summary>The set's id, chosen by the store: what StartRun takes as bin_set.</summary>
    public string Id { get; }

    /// <summary>The name the client gave (a RUN_ID): only a label.</summary>
    public string Name { get; }

    private string BlobName(string file) => $"{BlobBinSetStore.Prefix}{Id}/{file}";

    /// <summary>
    /// Stores one chunk of <paramref name="fileName"/>; <paramref name="last"/> ends the file (so does a chunk of
    /// another file).
    /// </summary>
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
            var stream = await _container.GetBlockBlobClient(BlobName(fileName))
                .OpenWriteAsync(overwrite: true, cancellationToken: cancellationToken).ConfigureAwait(false);
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
        while ((read = await content.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken)
            .ConfigureAwait(false)) > 0)
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
    /// <exception cref="IfcbException">
    /// InvalidArgument: no files; Aborted: a file vanished from storage meanwhile (upload again).
    /// </exception>
    public async Task<BinSetListing> CommitAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_committed, this);
        if (_open is not null)
            await CloseAsync(cancellationToken).ConfigureAwait(false);
        if (_files.Count == 0)
            throw IfcbException.InvalidArgument("The bin set upload has no files; send each bin's .adc, .hdr and .roi.");
        var stored = new Dictionary<string, long>(StringComparer.Ordinal);
        var folder = $"{BlobBinSetStore.Prefix}{Id}/";
        await foreach (var blob in _container.GetBlobsAsync(new GetBlobsOptions { Prefix = folder }, cancellationToken)
            .ConfigureAwait(false))
            stored[blob.Name[folder.Length..]] = blob.Properties.ContentLength ?? -1;
        foreach (var file in _files)
        {
            if (!stored.TryGetValue(file.File, out var size) || size != file.Size)
                throw IfcbException.Aborted($"{file.File} of bin set {Id} is not in storage as sent " +
                    "(collected while the upload stalled?); upload the bins again.");
        }
        var listing = new BinSetListing(Id, Name, DateTimeOffset.UtcNow, [.. _files.OrderBy(f => f.File, StringComparer.Ordinal)]);
        var written = await _listings.TryCreateAsync(folder + BlobBinSetStore.ListingFileName, listing, cancellationToken)
            .ConfigureAwait(false);
        if (written is null)
            throw IfcbException.Aborted($"Bin set {Id} already has a listing (written by another upload?); upload the bins again.");
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
            await foreach (var blob in _container.GetBlobsAsync(new GetBlobsOptions { Prefix = $"{BlobBinSetStore.Prefix}{Id}/" })
                .ConfigureAwait(false))
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
