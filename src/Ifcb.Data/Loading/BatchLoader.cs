using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Ifcb.Data.Datasets;
using Ifcb.Data.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace Ifcb.Data.Loading;

/// <summary>What to do with an image that cannot be read or decoded.</summary>
public enum CorruptImagePolicy
{
    /// <summary>Leave it out of its batch and record an <see cref="ImageFailure"/> (file and reason).</summary>
    Skip,

    /// <summary>Fail the epoch with an <see cref="InvalidDataException"/> naming the file.</summary>
    Throw,
}

/// <summary>An image left out, and why.</summary>
public sealed record ImageFailure(string Path, string Reason);

/// <summary>
/// Loader settings. <see cref="Training"/> selects whether flips apply (validation only gets them with <c>+V</c>).
/// <see cref="DecodeWorkers"/> threads decode each batch; at most <see cref="PrefetchBatches"/> finished batches wait
/// for the consumer, so memory stays near (PrefetchBatches + 2) x batch size x 3·S·S floats.
/// </summary>
public sealed record LoaderOptions(
    PreprocessOptions Preprocess,
    int BatchSize = 108,
    bool Shuffle = false,
    int Seed = 0,
    bool Training = false,
    int DecodeWorkers = 0,
    int PrefetchBatches = 2,
    CorruptImagePolicy CorruptImages = CorruptImagePolicy.Skip)
{
    public int EffectiveDecodeWorkers => DecodeWorkers > 0 ? DecodeWorkers : Environment.ProcessorCount;
}

/// <summary>
/// One batch. <see cref="Images"/> ([B,3,S,S] float32) and <see cref="Labels"/> ([B] int64) are created on first access,
/// on the calling thread, so they join a <c>torch.NewDisposeScope()</c> active there; otherwise dispose the batch
/// (which disposes the tensors it created) or take ownership by calling <c>DetachFromDisposeScope</c>/<c>MoveToOuterDisposeScope</c>.
/// The tensors are zero-copy views of a buffer the loader reuses once the batch is disposed: use them (or
/// <c>.to(device)</c>/<c>.clone()</c> them) before disposing the batch. An undisposed batch just costs a fresh buffer.
/// B can be smaller than the batch size for the last batch or when corrupt images were skipped.
/// </summary>
public sealed class Batch : IDisposable
{
    private readonly float[] _pixels;
    private readonly long[] _labels;
    private readonly int _imageLength;
    private readonly Action<float[]>? _returnBuffer;
    private Tensor? _images;
    private Tensor? _labelTensor;

    internal Batch(int number, float[] pixels, int imageLength, int size, long[] labels, int[] indices, IReadOnlyList<ImageFailure> failures, Action<float[]>? returnBuffer)
    {
        _returnBuffer = returnBuffer;
        Number = number;
        _pixels = pixels;
        _imageLength = imageLength;
        Count = size;
        _labels = labels;
        Indices = indices;
        Failures = failures;
    }

    /// <summary>0-based batch number within the epoch.</summary>
    public int Number { get; }

    /// <summary>Images in this batch (B).</summary>
    public int Count { get; }

    /// <summary>Positions of the batch's images in the loader's image list, in batch order.</summary>
    public IReadOnlyList<int> Indices { get; }

    /// <summary>Images of this batch's slot that were skipped.</summary>
    public IReadOnlyList<ImageFailure> Failures { get; }

    /// <summary>CHW float data of image <paramref name="i"/> of the batch (no tensor needed).</summary>
    public ReadOnlySpan<float> ImageData(int i)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)i, (uint)Count, nameof(i));
        return _pixels.AsSpan(i * _imageLength, _imageLength);
    }

    public ReadOnlySpan<long> LabelData => _labels.AsSpan(0, Count);

    public Tensor Images
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_images is null)
            {
                // from_array shares the managed buffer (no copy): copying 100+ MB into fresh libtorch memory per batch
                // cost more than decoding it. The view keeps the storage (and the pinned buffer) alive.
                var side = (long)Math.Sqrt(_imageLength / 3);
                using var flat = torch.from_array(_pixels);
                using var used = flat.narrow(0, 0, (long)Count * _imageLength);
                _images = used.view(Count, 3, side, side);
            }
            return _images;
        }
    }

    public Tensor Labels
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _labelTensor ??= torch.from_array(_labels);
        }
    }

    private bool _disposed;

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _images?.Dispose();
        _labelTensor?.Dispose();
        _returnBuffer?.Invoke(_pixels);
    }
}

/// <summary>
/// Decodes and preprocesses labelled images into batches ahead of the consumer. Each epoch's order is the list order,
/// or with <see cref="LoaderOptions.Shuffle"/> a permutation drawn from (seed, epoch); flips are drawn per image from
/// (seed, epoch, position), so an epoch's batches are identical whatever the thread count or timing.
/// </summary>
public sealed class BatchLoader
{
    private readonly IReadOnlyList<LabelledImage> _images;
    private readonly IImageSource _source;
    private readonly ImagePreprocessor _preprocessor;
    private readonly ConcurrentQueue<ImageFailure> _failures = new();

    // Batch buffers are large (108x3x299x299 floats = 116 MB); fresh ones cost page faults that outweigh decoding,
    // so disposed batches hand theirs back. At most a few are alive: prefetched, decoding and held by the consumer.
    private readonly ConcurrentBag<float[]> _buffers = new();

    public BatchLoader(IReadOnlyList<LabelledImage> images, IImageSource source, LoaderOptions options)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.BatchSize);
        ArgumentOutOfRangeException.ThrowIfNegative(options.PrefetchBatches);
        _images = images;
        _source = source;
        Options = options;
        _preprocessor = new ImagePreprocessor(options.Preprocess);
    }

    public LoaderOptions Options { get; }

    public int ImageCount => _images.Count;

    public int BatchCount => (_images.Count + Options.BatchSize - 1) / Options.BatchSize;

    /// <summary>Every image skipped so far (all epochs), in the order found.</summary>
    public IReadOnlyCollection<ImageFailure> Failures => _failures;

    /// <summary>The order in which epoch <paramref name="epoch"/> visits the image list.</summary>
    public int[] EpochOrder(int epoch)
    {
        var order = Enumerable.Range(0, _images.Count).ToArray();
        if (Options.Shuffle)
            new Random(MixSeed(Options.Seed, epoch, -1)).Shuffle(order);
        return order;
    }

    /// <summary>Batches of one epoch, produced ahead of the consumer on worker threads.</summary>
    /// <exception cref="InvalidDataException">With <see cref="CorruptImagePolicy.Throw"/>, an image could not be loaded.</exception>
    public async IAsyncEnumerable<Batch> ReadEpochAsync(int epoch, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var channel = Channel.CreateBounded<Task<Batch>>(new BoundedChannelOptions(Math.Max(1, Options.PrefetchBatches))
        {
            SingleReader = true,
            SingleWriter = true,
        });
        var order = EpochOrder(epoch);
        var producer = Task.Run(() => ProduceAsync(order, epoch, channel.Writer, cts.Token), CancellationToken.None);
        try
        {
            await foreach (var pending in channel.Reader.ReadAllAsync(cts.Token).ConfigureAwait(false))
            {
                cts.Token.ThrowIfCancellationRequested();
                var batch = await pending.ConfigureAwait(false);
                if (batch.Count > 0)
                    yield return batch;
            }
            await producer.ConfigureAwait(false);
        }
        finally
        {
            await cts.CancelAsync().ConfigureAwait(false);
            try
            {
                await producer.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
            // Let batches still decoding finish so no worker outlives the enumeration.
            while (channel.Reader.TryRead(out var leftover))
            {
                try
                {
                    (await leftover.ConfigureAwait(false)).Dispose();
                }
                catch (Exception e) when (e is OperationCanceledException or InvalidDataException or FileNotFoundException)
                {
                }
            }
        }
    }

    /// <summary>Synchronous form of <see cref="ReadEpochAsync"/> for training loops that are not async.</summary>
    public IEnumerable<Batch> ReadEpoch(int epoch, CancellationToken cancellationToken = default)
    {
        var enumerator = ReadEpochAsync(epoch, cancellationToken).GetAsyncEnumerator(cancellationToken);
        try
        {
            while (enumerator.MoveNextAsync().AsTask().GetAwaiter().GetResult())
                yield return enumerator.Current;
        }
        finally
        {
            enumerator.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    private async Task ProduceAsync(int[] order, int epoch, ChannelWriter<Task<Batch>> writer, CancellationToken token)
    {
        try
        {
            for (var b = 0; b * Options.BatchSize < order.Length; b++)
            {
                var number = b;
                var start = b * Options.BatchSize;
                var positions = order.AsMemory(start, Math.Min(Options.BatchSize, order.Length - start));
                await writer.WaitToWriteAsync(token).ConfigureAwait(false);
                var task = Task.Run(() => BuildBatch(number, epoch, start, positions.Span, token), token);
                await writer.WriteAsync(task, token).ConfigureAwait(false);
            }
            writer.Complete();
        }
        catch (Exception e)
        {
            writer.TryComplete(e);
            throw;
        }
    }

    private Batch BuildBatch(int number, int epoch, int firstPosition, ReadOnlySpan<int> positionSpan, CancellationToken token)
    {
        var positions = positionSpan.ToArray();
        var imageLength = Options.Preprocess.TensorLength;
        var slots = _buffers.TryTake(out var pooled) ? pooled : new float[Options.BatchSize * imageLength];
        var ok = new bool[positions.Length];
        var errors = new ImageFailure?[positions.Length];
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = Options.EffectiveDecodeWorkers, CancellationToken = token };
        Parallel.For(0, positions.Length, parallel, i =>
        {
            var image = _images[positions[i]];
            try
            {
                var decoded = _source.Load(image.Path);
                var random = new Random(MixSeed(Options.Seed, epoch, firstPosition + i));
                _preprocessor.Process(decoded, Options.Training, random, slots.AsSpan(i * imageLength, imageLength));
                ok[i] = true;
            }
            catch (Exception e) when (e is InvalidDataException or FileNotFoundException or IOException or UnauthorizedAccessException)
            {
                if (Options.CorruptImages == CorruptImagePolicy.Throw)
                    throw new InvalidDataException($"Image {image.Path} could not be loaded: {e.Message}", e);
                errors[i] = new ImageFailure(image.Path, e.Message);
            }
        });
        var count = ok.Count(x => x);
        var labels = new long[count];
        var indices = new int[count];
        var failures = new List<ImageFailure>();
        var k = 0;
        for (var i = 0; i < positions.Length; i++)
        {
            if (!ok[i])
            {
                failures.Add(errors[i]!);
                _failures.Enqueue(errors[i]!);
                continue;
            }
            // Close the gaps left by skipped images; k <= i, so moving forward in place is safe.
            if (k != i)
                slots.AsSpan(i * imageLength, imageLength).CopyTo(slots.AsSpan(k * imageLength, imageLength));
            labels[k] = _images[positions[i]].ClassIndex;
            indices[k] = positions[i];
            k++;
        }
        return new Batch(number, slots, imageLength, count, labels, indices, failures, ReturnBuffer);
    }

    private void ReturnBuffer(float[] buffer)
    {
        if (_buffers.Count < Options.PrefetchBatches + 2)
            _buffers.Add(buffer);
    }

    // SplitMix64 finaliser: turns (seed, epoch, position) into well-spread, reproducible Random seeds.
    private static int MixSeed(int seed, int epoch, int position)
    {
        unchecked
        {
            var z = ((ulong)(uint)seed << 32) ^ ((ulong)(uint)epoch * 0x9E3779B97F4A7C15UL) ^ ((ulong)(uint)position * 0xBF58476D1CE4E5B9UL);
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return (int)(z ^ (z >> 31));
        }
    }
}
