using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using Ifcb.Data.Datasets;
using Ifcb.Platform;

namespace Ifcb.Data.Loading;

/// <summary>
/// Decodes and preprocesses labelled images into batches ahead of the consumer. Each epoch's order is the list order,
/// or with <see cref="LoaderOptions.Shuffle"/> a permutation drawn from (seed, epoch); flips are drawn per image from
/// (seed, epoch, position), so an epoch's batches are identical whatever the thread count or timing.
/// </summary>
public sealed class BatchLoader
{
    private readonly IReadOnlyList<LabelledImage> _images;
    private readonly BatchDecoder _decoder;

    public BatchLoader(IReadOnlyList<LabelledImage> images, IImageSource source, LoaderOptions options)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (options.SampleWeights is { } weights && weights.Count != images.Count)
            throw new ArgumentException($"{weights.Count} sample weights for {images.Count} images; give one per image.", nameof(options));
        _images = images;
        Options = options;
        _decoder = new BatchDecoder(images, source, options);
    }

    public LoaderOptions Options { get; }

    public int ImageCount => _images.Count;

    public int BatchCount => (_images.Count + Options.BatchSize - 1) / Options.BatchSize;

    /// <summary>Every image skipped so far (all epochs), in the order found.</summary>
    public IReadOnlyCollection<ImageFailure> Failures => _decoder.Failures;

    /// <summary>
    /// The order in which epoch <paramref name="epoch"/> visits the image list; with sample weights, the images drawn
    /// (with replacement) for it.
    /// </summary>
    public int[] EpochOrder(int epoch)
    {
        if (Options.SampleWeights is { } weights)
            return WeightedDraws(weights, new Random(EpochSeeds.Shuffle(Options.Seed, epoch)));
        var order = Enumerable.Range(0, _images.Count).ToArray();
        if (Options.Shuffle)
            new Random(EpochSeeds.Shuffle(Options.Seed, epoch)).Shuffle(order);
        return order;
    }

    // Inverse-CDF sampling: each draw is the first image whose cumulative weight exceeds a uniform draw over the total.
    private static int[] WeightedDraws(IReadOnlyList<double> weights, Random random)
    {
        var cumulative = new double[weights.Count];
        double total = 0;
        for (var i = 0; i < weights.Count; i++)
            cumulative[i] = total += weights[i];
        var draws = new int[weights.Count];
        for (var d = 0; d < draws.Length; d++)
        {
            var u = random.NextDouble() * total;
            var found = Array.BinarySearch(cumulative, u);
            var index = found >= 0 ? found + 1 : ~found;
            while (index < cumulative.Length - 1 && weights[index] == 0)
                index++;
            draws[d] = Math.Min(index, cumulative.Length - 1);
        }
        return draws;
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
        // Blocking is safe because ReadEpochAsync awaits with ConfigureAwait(false), as this shared library does
        // throughout: no continuation needs the caller's synchronization context, which this thread holds meanwhile.
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

    // Queues every image of each batch for the decode threads; the channel's capacity bounds how many batches are
    // queued or finished ahead of the consumer.
    private async Task ProduceAsync(int[] order, ChannelWriter<PendingBatch> writer, BlockingCollection<(PendingBatch, int)> work,
        List<PendingBatch> started, CancellationToken token)
    {
        try
        {
            for (var b = 0; (long)b * Options.BatchSize < order.Length; b++)
            {
                var start = b * Options.BatchSize;
                var positions = order.AsSpan(start, Math.Min(Options.BatchSize, order.Length - start)).ToArray();
                await writer.WaitToWriteAsync(token).ConfigureAwait(false);
                var pending = _decoder.Start(b, start, positions);
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
                    _decoder.DecodeOne(pending, i, epoch);
                    if (Interlocked.Decrement(ref pending.Remaining) == 0 && !pending.Done.Task.IsCompleted)
                        pending.Done.TrySetResult(_decoder.Assemble(pending));
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
}
