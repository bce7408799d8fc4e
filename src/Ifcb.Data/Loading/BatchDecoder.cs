using System.Collections.Concurrent;
using Ifcb.Data.Datasets;
using Ifcb.Data.Imaging;
using Ifcb.Platform;

namespace Ifcb.Data.Loading;

/// <summary>
/// Fills the batches of a <see cref="BatchLoader"/>: loads and preprocesses each image into its slot of a pooled
/// buffer, leaves out (or, with <see cref="CorruptImagePolicy.Throw"/>, fails on) the images that cannot be read, and
/// closes the gaps once a batch is complete. Safe to call from the decode threads at once, one slot per call.
/// </summary>
internal sealed class BatchDecoder
{
    private readonly IReadOnlyList<LabelledImage> _images;
    private readonly IImageSource _source;
    private readonly LoaderOptions _options;
    private readonly ImagePreprocessor _preprocessor;
    private readonly ConcurrentQueue<ImageFailure> _failures = new();

    // Batch buffers are large (Defaults.BatchSize images of 3x299x299 floats are 116 MB); fresh ones cost page faults
    // that outweigh decoding, so disposed batches hand theirs back. At most a few are alive: prefetched, decoding and
    // held by the consumer.
    private readonly ConcurrentBag<float[]> _buffers = new();

    public BatchDecoder(IReadOnlyList<LabelledImage> images, IImageSource source, LoaderOptions options)
    {
        _images = images;
        _source = source;
        _options = options;
        _preprocessor = new ImagePreprocessor(options.Preprocess);
    }

    /// <summary>Every image skipped so far (all epochs), in the order found.</summary>
    public IReadOnlyCollection<ImageFailure> Failures => _failures;

    /// <summary>
    /// A batch of the images at <paramref name="positions"/> (epoch order from <paramref name="firstPosition"/>), in a
    /// pooled buffer.
    /// </summary>
    public PendingBatch Start(int number, int firstPosition, int[] positions)
    {
        // LoaderOptions.Validate() bounded batch × size to MaxBatchTensorBytes, so a batch buffer is a valid array length.
        var slots = _buffers.TryTake(out var pooled) ? pooled : new float[checked((int)_options.BatchFloats)];
        return new PendingBatch(number, firstPosition, positions, slots);
    }

    // Loads image i of a batch into its slot. The image's own faults (missing, unreadable, corrupt, over the pixel
    // limit) skip it; an outage or a bug is not the image's fault and fails its batch, so no image is silently lost.
    public void DecodeOne(PendingBatch pending, int i, int epoch)
    {
        var imageLength = _options.Preprocess.TensorLength;
        var image = _images[pending.Positions[i]];
        try
        {
            var decoded = _source.Load(image.Path);
            var random = new Random(EpochSeeds.Image(_options.Seed, epoch, pending.FirstPosition + i));
            _preprocessor.Process(decoded, _options.Training, random, pending.Slots.AsSpan(i * imageLength, imageLength));
            pending.Ok[i] = true;
        }
        catch (Exception e) when (IsImageFault(e))
        {
            if (_options.CorruptImages == CorruptImagePolicy.Throw)
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
    public Batch Assemble(PendingBatch pending)
    {
        var imageLength = _options.Preprocess.TensorLength;
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
        return new Batch(pending.Slots, imageLength, labels, ReturnBuffer)
        {
            Number = pending.Number, Indices = indices, Failures = failures,
        };
    }

    private void ReturnBuffer(float[] buffer)
    {
        if (_buffers.Count < _options.PrefetchBatches + 2)
            _buffers.Add(buffer);
    }
}
