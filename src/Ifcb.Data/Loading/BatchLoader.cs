using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using Ifcb.Contracts;
using Ifcb.Data.Datasets;
using Ifcb.Data.Imaging;
using Ifcb.Platform;
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
/// for the consumer, so memory stays near (PrefetchBatches + 2) x batch size x 3·S·S floats — which is why
/// <see cref="Validate"/> bounds batch × size (see <see cref="Limits.CheckBatch"/>).
/// </summary>
public sealed record LoaderOptions(
    PreprocessOptions Preprocess,
    int BatchSize = Defaults.BatchSize,
    bool Shuffle = false,
    int Seed = 0,
    bool Training = false,
    int DecodeWorkers = 0,
    int PrefetchBatches = 2,
    CorruptImagePolicy CorruptImages = CorruptImagePolicy.Skip)
{
    /// <summary>Most decode threads one loader starts (more only adds contention; a typo must not start a million threads).</summary>
    public const int MaxDecodeWorkers = 256;

    /// <summary>Most finished batches kept ahead of the consumer.</summary>
    public const int MaxPrefetchBatches = 64;

    public int EffectiveDecodeWorkers => DecodeWorkers > 0 ? DecodeWorkers : Math.Min(Environment.ProcessorCount, MaxDecodeWorkers);

    /// <summary>Floats in one batch buffer: batch × 3 × size², computed without overflow.</summary>
    public long BatchFloats => (long)BatchSize * Preprocess.TensorLength;

    /// <exception cref="IfcbException">InvalidArgument naming the field and its limit.</exception>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Preprocess);
        Limits.CheckBatch(BatchSize, Preprocess.Size);
        Limits.Check(DecodeWorkers, 0, MaxDecodeWorkers, "decode workers", nameof(MaxDecodeWorkers));
        Limits.Check(PrefetchBatches, 0, MaxPrefetchBatches, "prefetch batches", nameof(MaxPrefetchBatches));
    }
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
        options.Validate();
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

    /// <summary>
    /// Batches of one epoch, produced ahead of the consumer by <see cref="LoaderOptions.EffectiveDecodeWorkers"/>
    /// dedicated threads. They take images one at a time in epoch order, so while one thread finishes a batch the others
    /// already start the next; dedicated threads (not the thread pool) keep decoding from waiting on thread injection,
    /// which cost the first epochs a third of their throughput when batches were decoded with Parallel.For on pool threads.
    /// No exception ever escapes a decode thread: an image that is missing, unreadable, corrupt or over the pixel limit
    /// is skipped and recorded (<see cref="Failures"/>); anything else fails the batch it happened in, and the consumer
    /// gets it here, in batch order, once it reaches that batch. By the time this enumerator is done (finished, failed,
    /// cancelled or disposed early) every decode thread has ended.
    /// </summary>
    /// <exception cref="InvalidDataException">With <see cref="CorruptImagePolicy.Throw"/>, an image could not be loaded.</exception>
    /// <exception cref="InvalidOperationException">
    /// Loading an image failed in a way that is not the image's fault (a storage outage, a bug): the message names the
    /// image, the inner exception is the original, so <see cref="Faults.IsTransient"/> still recognises an outage.
    /// </exception>
    public async IAsyncEnumerable<Batch> ReadEpochAsync(int epoch, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var channel = Channel.CreateBounded<PendingBatch>(new BoundedChannelOptions(Math.Max(1, Options.PrefetchBatches))
        {
            SingleReader = true,
            SingleWriter = true,
        });
        var state = new EpochState(cts);
        using var work = new BlockingCollection<(PendingBatch Batch, int Slot)>(new ConcurrentQueue<(PendingBatch, int)>());
        var workers = Enumerable.Range(0, Options.EffectiveDecodeWorkers)
            .Select(i => new Thread(() => DecodeLoop(work, epoch, state)) { IsBackground = true, Name = $"ifcb-decode-{i}" })
            .ToList();
        workers.ForEach(w => w.Start());
        var started = new List<PendingBatch>();
        var producer = Task.Run(() => ProduceAsync(EpochOrder(epoch), channel.Writer, work, started, cts.Token), CancellationToken.None);
        try
        {
            while (await NextBatchAsync(channel.Reader, state, cts.Token).ConfigureAwait(false) is { } batch)
            {
                if (batch.Count > 0)
                    yield return batch;
                else
                    batch.Dispose();
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
            work.CompleteAdding();
            foreach (var worker in workers)
                worker.Join();
            // No worker is left: batches still pending will not finish; finished ones give their buffers back.
            lock (started)
            {
                foreach (var pending in started)
                {
                    if (!pending.Done.TrySetCanceled() && pending.Done.Task.IsCompletedSuccessfully && !pending.Consumed)
                        pending.Done.Task.Result.Dispose();
                }
            }
        }
    }

    // The next batch in epoch order, or null at the end. Waiting on a batch also ends when the epoch is cancelled or a
    // decode thread died (its batch would never finish): then the thread's error is thrown, not a bare cancellation.
    private static async Task<Batch?> NextBatchAsync(ChannelReader<PendingBatch> reader, EpochState state, CancellationToken token)
    {
        try
        {
            if (!await reader.WaitToReadAsync(token).ConfigureAwait(false) || !reader.TryRead(out var pending))
                return null;
            var batch = await pending.Done.Task.WaitAsync(token).ConfigureAwait(false);
            pending.Consumed = true; // from here the consumer disposes it
            return batch;
        }
        catch (OperationCanceledException) when (state.Fault is { } fault)
        {
            fault.Throw();
            throw;
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

    /// <summary>A batch being decoded: its images' slots in a pooled buffer and how many are still to do.</summary>
    private sealed class PendingBatch(int number, int firstPosition, int[] positions, float[] slots)
    {
        public int Number { get; } = number;
        public int FirstPosition { get; } = firstPosition;
        public int[] Positions { get; } = positions;
        public float[] Slots { get; } = slots;
        public bool[] Ok { get; } = new bool[positions.Length];
        public ImageFailure?[] Errors { get; } = new ImageFailure?[positions.Length];
        public int Remaining = positions.Length;
        public bool Consumed;
        public TaskCompletionSource<Batch> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    // Queues every image of each batch for the decode threads; the channel's capacity bounds how many batches are
    // queued or finished ahead of the consumer.
    private async Task ProduceAsync(int[] order, ChannelWriter<PendingBatch> writer, BlockingCollection<(PendingBatch, int)> work,
        List<PendingBatch> started, CancellationToken token)
    {
        try
        {
            // Validate() bounded batch × size to MaxBatchTensorBytes, so a batch buffer is a valid array length.
            var bufferLength = checked((int)Options.BatchFloats);
            for (var b = 0; (long)b * Options.BatchSize < order.Length; b++)
            {
                var start = b * Options.BatchSize;
                var positions = order.AsSpan(start, Math.Min(Options.BatchSize, order.Length - start)).ToArray();
                await writer.WaitToWriteAsync(token).ConfigureAwait(false);
                var slots = _buffers.TryTake(out var pooled) ? pooled : new float[bufferLength];
                var pending = new PendingBatch(b, start, positions, slots);
                lock (started)
                    started.Add(pending);
                for (var i = 0; i < positions.Length; i++)
                    work.Add((pending, i), token);
                await writer.WriteAsync(pending, token).ConfigureAwait(false);
            }
            writer.Complete();
        }
        catch (Exception e)
        {
            writer.TryComplete(e);
            throw;
        }
    }

    /// <summary>What the decode threads of one epoch share with its consumer.</summary>
    private sealed class EpochState(CancellationTokenSource cancellation)
    {
        private ExceptionDispatchInfo? _fault;

        public CancellationToken Token => cancellation.Token;

        /// <summary>Set when a decode thread died outside any one image's work; the epoch is then cancelled.</summary>
        public ExceptionDispatchInfo? Fault => Volatile.Read(ref _fault);

        public void FailEpoch(Exception error)
        {
            Interlocked.CompareExchange(ref _fault, ExceptionDispatchInfo.Capture(error), null);
            try
            {
                cancellation.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The epoch is already over.
            }
        }
    }

    // The body of a decode thread. It must never throw: an exception leaving a thread kills the process.
    private void DecodeLoop(BlockingCollection<(PendingBatch Batch, int Slot)> work, int epoch, EpochState state)
    {
        try
        {
            foreach (var (pending, i) in work.GetConsumingEnumerable(state.Token))
            {
                try
                {
                    DecodeOne(pending, i, epoch);
                    if (Interlocked.Decrement(ref pending.Remaining) == 0 && !pending.Done.Task.IsCompleted)
                        pending.Done.TrySetResult(Assemble(pending));
                }
                catch (Exception e)
                {
                    // Every exception must end here (the alternative is a dead process); the consumer gets it in order.
                    pending.Done.TrySetException(e);
                }
            }
        }
        catch (OperationCanceledException) when (state.Token.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            state.FailEpoch(new InvalidOperationException($"An image decode thread failed: {e.GetType().Name}: {e.Message}", e));
        }
    }

    // Loads image i of a batch into its slot. The image's own faults (missing, unreadable, corrupt, over the pixel
    // limit) skip it; an outage or a bug is not the image's fault and fails its batch, so no image is silently lost.
    private void DecodeOne(PendingBatch pending, int i, int epoch)
    {
        var imageLength = Options.Preprocess.TensorLength;
        var image = _images[pending.Positions[i]];
        try
        {
            var decoded = _source.Load(image.Path);
            var random = new Random(MixSeed(Options.Seed, epoch, pending.FirstPosition + i));
            _preprocessor.Process(decoded, Options.Training, random, pending.Slots.AsSpan(i * imageLength, imageLength));
            pending.Ok[i] = true;
        }
        catch (Exception e) when (IsImageFault(e))
        {
            if (Options.CorruptImages == CorruptImagePolicy.Throw)
                pending.Done.TrySetException(new InvalidDataException($"Image {image.Path} could not be loaded: {e.Message}", e));
            pending.Errors[i] = new ImageFailure(image.Path, e.Message);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new InvalidOperationException($"Loading image {image.Path} failed: {e.GetType().Name}: {e.Message}", e);
        }
    }

    private static bool IsImageFault(Exception e) =>
        !Faults.IsTransient(e)
        && e is InvalidDataException or IOException or UnauthorizedAccessException
            or IfcbException { Kind: ErrorKind.NotFound or ErrorKind.InvalidArgument or ErrorKind.DataLoss };

    // Closes the gaps left by skipped images and records their failures.
    private Batch Assemble(PendingBatch pending)
    {
        var imageLength = Options.Preprocess.TensorLength;
        var count = pending.Ok.Count(x => x);
        var labels = new long[count];
        var indices = new int[count];
        var failures = new List<ImageFailure>();
        var k = 0;
        for (var i = 0; i < pending.Positions.Length; i++)
        {
            if (!pending.Ok[i])
            {
                failures.Add(pending.Errors[i]!);
                _failures.Enqueue(pending.Errors[i]!);
                continue;
            }
            // k <= i, so moving forward in place is safe.
            if (k != i)
                pending.Slots.AsSpan(i * imageLength, imageLength).CopyTo(pending.Slots.AsSpan(k * imageLength, imageLength));
            labels[k] = _images[pending.Positions[i]].ClassIndex;
            indices[k] = pending.Positions[i];
            k++;
        }
        return new Batch(pending.Number, pending.Slots, imageLength, count, labels, indices, failures, ReturnBuffer);
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
