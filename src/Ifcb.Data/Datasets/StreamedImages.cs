using Ifcb.Data.Datasets.Shards;
using Ifcb.Data.Imaging;
using Ifcb.Data.Loading;

namespace Ifcb.Data.Datasets;

/// <summary>
/// Images of a dataset arriving from storage while they are decoded: <see cref="Load"/> returns an image as soon as its
/// bytes are in (and checked against its SHA-256), so decoding starts with the first image instead of after the last.
/// Images of a sharded dataset come by ranged reads that each cover a run of neighbouring images in one shard; images
/// of the layouts before shards come one blob each. Build one with <see cref="BlobDatasetStore.StreamImages"/>.
/// </summary>
public sealed class StreamedImages : IImageSource
{
    private readonly Dictionary<string, TaskCompletionSource<byte[]>> _images;
    private readonly string _dataset;

    internal StreamedImages(string dataset, IEnumerable<string> keys)
    {
        _dataset = dataset;
        _images = keys.ToDictionary(k => k, _ => new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously),
            StringComparer.Ordinal);
    }

    /// <summary>Completes when every image has arrived; faults with the first download error.</summary>
    public Task Completion { get; internal set; } = Task.CompletedTask;

    /// <summary>Ranged reads (or single-image downloads) this made.</summary>
    public int Requests { get; internal set; }

    internal void Deliver(string key, byte[] bytes) => _images[key].TrySetResult(bytes);

    /// <summary>
    /// Every image not delivered yet fails with an <see cref="ImageDownloadException"/> (not an I/O or data error, so
    /// that a reader does not take it for a corrupt image), so no reader waits for ever.
    /// </summary>
    internal void FailRemaining(Exception error)
    {
        var failed = new ImageDownloadException($"Reading images of dataset {_dataset} failed: {error.Message}", error);
        foreach (var pending in _images.Values)
            pending.TrySetException(failed);
    }

    /// <summary>The encoded bytes of one image, waiting for them to arrive.</summary>
    /// <exception cref="FileNotFoundException">Not one of the images asked for.</exception>
    /// <exception cref="ImageDownloadException">The downloads failed before this image arrived (see <see cref="Completion"/>).</exception>
    public byte[] ReadBytes(string key) =>
        _images.TryGetValue(key, out var pending)
            ? pending.Task.GetAwaiter().GetResult()
            : throw new FileNotFoundException($"Image {key} is not among the images read from dataset {_dataset}.", key);

    public DecodedImage Load(string path) => ImageDecoder.Decode(ReadBytes(path), $"{_dataset}/{path}");

    /// <summary>One read: a byte range of a shard holding <see cref="Members"/>, or one image of an older layout.</summary>
    internal sealed record Read(string? Shard, long Offset, long Length, IReadOnlyList<DatasetFile> Members);

    /// <summary>
    /// Groups images, in the order given, into reads: a run of images of one shard, each starting at most
    /// <paramref name="maxGap"/> bytes after the previous one ended, is one ranged read.
    /// </summary>
    internal static List<Read> Plan(IReadOnlyList<DatasetFile> files, long maxGap)
    {
        var reads = new List<Read>();
        List<DatasetFile>? run = null;
        long runStart = 0, runEnd = 0;
        string? runShard = null;
        foreach (var file in files)
        {
            if (file.Shard is null || file.Offset is not { } offset)
            {
                reads.Add(new Read(null, 0, file.Size, [file]));
                continue;
            }
            if (run is not null && file.Shard == runShard && offset >= runEnd && offset - runEnd <= maxGap)
            {
                run.Add(file);
                runEnd = offset + file.Size;
                continue;
            }
            if (run is not null)
                reads.Add(new Read(runShard, runStart, runEnd - runStart, run));
            run = [file];
            runShard = file.Shard;
            runStart = offset;
            runEnd = offset + file.Size;
        }
        if (run is not null)
            reads.Add(new Read(runShard, runStart, runEnd - runStart, run));
        return reads;
    }

    /// <summary>Reads a ranged download front to back, delivering each member as soon as its bytes are in.</summary>
    internal async Task DeliverRangeAsync(Stream range, Read read, CancellationToken cancellationToken)
    {
        var position = read.Offset;
        var skip = new byte[64 * 1024];
        foreach (var member in read.Members)
        {
            for (var gap = member.Offset!.Value - position; gap > 0;)
            {
                var n = await range.ReadAsync(skip.AsMemory(0, (int)Math.Min(skip.Length, gap)), cancellationToken).ConfigureAwait(false);
                if (n == 0)
                    throw new InvalidDataException($"A read of shard {read.Shard![..12]}… of dataset {_dataset} ended early.");
                gap -= n;
            }
            var bytes = new byte[member.Size];
            try
            {
                await range.ReadExactlyAsync(bytes, cancellationToken).ConfigureAwait(false);
            }
            catch (EndOfStreamException e)
            {
                throw new InvalidDataException($"A read of shard {read.Shard![..12]}… of dataset {_dataset} ended inside {member.Key}.", e);
            }
            ShardReader.Verify(bytes, new ShardMember(member.Class, member.File, member.Offset.Value, member.Size, member.Sha256),
                $"dataset {_dataset}, shard {read.Shard![..12]}…");
            position = member.Offset.Value + member.Size;
            Deliver(member.Key, bytes);
        }
    }
}

/// <summary>Images could not be read from storage (the inner exception says why); the images themselves may be fine.</summary>
public sealed class ImageDownloadException(string message, Exception inner) : Exception(message, inner);
