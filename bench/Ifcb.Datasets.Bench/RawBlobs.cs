using System.Diagnostics;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

/// <summary>
/// The storage references, straight through the Azure SDK against the platform's own Azurite: the same files one blob
/// per image (today's layout, the floor of any per-image upload), and the same bytes concatenated into large blobs
/// (the most a packed layout can hope for), uploaded and downloaded in parallel.
/// </summary>
internal static class RawBlobs
{
    public const long PackBytes = 64L << 20;
    private const int PackParallelism = 4;

    /// <summary>Uploads every file as its own blob, <paramref name="parallelism"/> at a time; returns the seconds taken.</summary>
    public static async Task<double> UploadPerImageAsync(BlobContainerClient container, IReadOnlyList<string> files, int parallelism,
        CancellationToken cancellationToken)
    {
        await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, files.Count),
            new ParallelOptions { MaxDegreeOfParallelism = parallelism, CancellationToken = cancellationToken },
            async (i, ct) => await container.GetBlobClient($"{i:D7}.png").UploadAsync(files[i], ct));
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// Concatenates the files, in order, into blobs of about <see cref="PackBytes"/> and uploads them in parallel; returns
    /// the blob names and the seconds taken (reading the files included, as an upload of folder files includes it).
    /// </summary>
    public static async Task<(IReadOnlyList<string> Blobs, double Seconds)> UploadPackedAsync(BlobContainerClient container,
        IReadOnlyList<string> files, CancellationToken cancellationToken)
    {
        await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
        var packs = new List<List<string>>();
        var size = PackBytes;
        foreach (var file in files)
        {
            var length = new FileInfo(file).Length;
            if (size + length > PackBytes && size > 0)
            {
                packs.Add([]);
                size = 0;
            }
            packs[^1].Add(file);
            size += length;
        }
        var names = packs.Select((_, i) => $"pack-{i:D5}.bin").ToArray();
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, packs.Count),
            new ParallelOptions { MaxDegreeOfParallelism = PackParallelism, CancellationToken = cancellationToken },
            async (i, ct) =>
            {
                using var pack = new MemoryStream();
                foreach (var file in packs[i])
                {
                    await using var input = File.OpenRead(file);
                    await input.CopyToAsync(pack, ct);
                }
                pack.Position = 0;
                await container.GetBlobClient(names[i]).UploadAsync(pack, new BlobUploadOptions { TransferOptions = Transfer }, ct);
            });
        return (names, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Downloads the blobs in parallel (bytes discarded); returns the bytes and the seconds taken.</summary>
    public static async Task<(long Bytes, double Seconds)> DownloadAsync(BlobContainerClient container, IReadOnlyList<string> blobs,
        CancellationToken cancellationToken)
    {
        long bytes = 0;
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(blobs,
            new ParallelOptions { MaxDegreeOfParallelism = PackParallelism, CancellationToken = cancellationToken },
            async (name, ct) =>
            {
                await using var counter = new CountingStream();
                await container.GetBlobClient(name).DownloadToAsync(counter, new BlobDownloadToOptions { TransferOptions = Transfer }, ct);
                Interlocked.Add(ref bytes, counter.Length);
            });
        return (bytes, clock.Elapsed.TotalSeconds);
    }

    private static readonly StorageTransferOptions Transfer = new()
    {
        MaximumConcurrency = 4, InitialTransferSize = 8 << 20, MaximumTransferSize = 8 << 20,
    };

    /// <summary>A write-only sink that only counts, so the download reference measures the transfer, not a disk.</summary>
    private sealed class CountingStream : Stream
    {
        private long _length;

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _length;
        public override long Position { get => _length; set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => _length += count;
        public override void Write(ReadOnlySpan<byte> buffer) => _length += buffer.Length;

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _length += buffer.Length;
            return ValueTask.CompletedTask;
        }
    }
}
