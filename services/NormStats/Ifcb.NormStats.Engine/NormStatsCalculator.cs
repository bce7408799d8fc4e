using System.Buffers;
using Ifcb.Contracts;
using Ifcb.Data.Datasets;
using Ifcb.Data.Imaging;
using Ifcb.Data.Loading;

namespace Ifcb.NormStats.Engine;

/// <summary>Progress of a shard: images done (including failed ones) out of the shard's total.</summary>
public readonly record struct NormStatsProgress(int Done, int Total, int Failed);

/// <summary>A shard's partial result: its moments and the images it could not read.</summary>
public sealed record NormStatsPartial(ChannelMoments Moments, int ImageCount, IReadOnlyList<ImageFailure> Failures)
{
    public NormStatsPartial Merge(NormStatsPartial other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return new NormStatsPartial(Moments.Merge(other.Moments), ImageCount + other.ImageCount, [.. Failures, .. other.Failures]);
    }
}

/// <summary>
/// neuston's CALC_IMG_NORM: images are resized to S×S with Pillow-bilinear (no flips, no normalisation) and read as
/// float32 <c>v/255</c>. Corrupt images are counted, listed and excluded.
/// </summary>
public sealed class NormStatsCalculator
{
    private readonly IImageSource _source;
    private readonly int _size;
    private readonly int _workers;

    public NormStatsCalculator(int size = 299, IImageSource? source = null, int workers = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        _size = size;
        _source = source ?? LocalFileImageSource.Instance;
        _workers = workers > 0 ? workers : Environment.ProcessorCount;
    }

    /// <summary>neuston's CALC_IMG_NORM batch size.</summary>
    public const int NeustonBatchSize = Defaults.BatchSize;

    /// <summary>Partial moments of <paramref name="images"/>[start, start+count): one shard of a distributed computation.</summary>
    public NormStatsPartial ComputePartial(IReadOnlyList<LabelledImage> images, int start, int count,
        IProgress<NormStatsProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (start < 0 || count < 0 || start + count > images.Count)
            throw new ArgumentOutOfRangeException(nameof(count), $"Shard [{start}, {start + count}) is outside the {images.Count} images.");
        var perImage = new ChannelMoments?[count];
        var failures = new ImageFailure?[count];
        var done = 0;
        var failed = 0;
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = _workers, CancellationToken = cancellationToken };
        Parallel.For(0, count, parallel, i =>
        {
            var path = images[start + i].Path;
            if (TryHistograms(path, out var histograms, out var error))
                perImage[i] = FromHistograms(histograms!);
            else
            {
                failures[i] = error;
                Interlocked.Increment(ref failed);
            }
            var d = Interlocked.Increment(ref done);
            progress?.Report(new NormStatsProgress(d, count, Volatile.Read(ref failed)));
        });
        // Merge in image order so a shard's result does not depend on thread timing.
        var moments = ChannelMoments.MergeAll(perImage.Where(m => m is not null)!);
        return new NormStatsPartial(moments, perImage.Count(m => m is not null), failures.Where(f => f is not null).ToList()!);
    }

    /// <summary>
    /// Exact mean and population std over all pixels of all images (one shard; see <see cref="ComputePartial"/> to split).
    /// </summary>
    public NormStatsResult ComputeExact(IReadOnlyList<LabelledImage> images, IProgress<NormStatsProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(images);
        return ToResult(ComputePartial(images, 0, images.Count, progress, cancellationToken));
    }

    /// <summary>Turns merged shard partials into the final result.</summary>
    public static NormStatsResult ToResult(NormStatsPartial merged)
    {
        ArgumentNullException.ThrowIfNull(merged);
        if (merged.Moments.N == 0)
            throw new InvalidDataException($"No readable images: {merged.Failures.Count} failed " +
                $"({string.Join("; ", merged.Failures.Take(3).Select(f => $"{f.Path}: {f.Reason}"))}).");
        return new NormStatsResult(merged.Moments.Mean, merged.Moments.Std, merged.ImageCount, merged.Moments.N, merged.Failures,
            NormStatsEstimator.Exact);
    }

    /// <summary>
    /// neuston's estimator: batches of <paramref name="batchSize"/> images in dataset order; per batch the mean and the
    /// population std over (B,H,W) per channel (computed here in double; neuston used float32); the result is the
    /// unweighted mean of the batch means and of the batch stds (the last, partial batch weighs as much as the others).
    /// Unreadable images are left out of their batch.
    /// </summary>
    public NormStatsResult ComputeNeuston(IReadOnlyList<LabelledImage> images, int batchSize = NeustonBatchSize,
        IProgress<NormStatsProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(images);
        return FromNeustonBatches(ComputeBatches(images, 0, images.Count, batchSize, progress, cancellationToken));
    }

    /// <summary>
    /// One partial per batch of <paramref name="batchSize"/> images of <paramref name="images"/>[start, start+count),
    /// the batches starting at <paramref name="start"/>. A shard of a distributed neuston computation starts at a
    /// multiple of the batch size, so its batches are exactly neuston's.
    /// </summary>
    public IReadOnlyList<NormStatsPartial> ComputeBatches(IReadOnlyList<LabelledImage> images, int start, int count,
        int batchSize = NeustonBatchSize, IProgress<NormStatsProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        var batches = new List<NormStatsPartial>();
        var failed = 0;
        for (var offset = 0; offset < count; offset += batchSize)
        {
            var batch = ComputePartial(images, start + offset, Math.Min(batchSize, count - offset), null, cancellationToken);
            failed += batch.Failures.Count;
            batches.Add(batch);
            progress?.Report(new NormStatsProgress(Math.Min(offset + batchSize, count), count, failed));
        }
        return batches;
    }

    /// <summary>
    /// neuston's final step over the batches in dataset order: mean of batch means, mean of batch stds; empty batches are
    /// skipped.
    /// </summary>
    /// <exception cref="InvalidDataException">No batch has a readable image.</exception>
    public static NormStatsResult FromNeustonBatches(IEnumerable<NormStatsPartial> batchesInOrder)
    {
        ArgumentNullException.ThrowIfNull(batchesInOrder);
        var sumMeans = new double[3];
        var sumStds = new double[3];
        var batches = 0;
        var total = 0;
        long pixels = 0;
        var imageCount = 0;
        var failures = new List<ImageFailure>();
        foreach (var batch in batchesInOrder)
        {
            failures.AddRange(batch.Failures);
            imageCount += batch.ImageCount;
            total += batch.ImageCount + batch.Failures.Count;
            if (batch.Moments.N == 0)
                continue;
            batches++;
            pixels += batch.Moments.N;
            var std = batch.Moments.Std;
            for (var c = 0; c < 3; c++)
            {
                sumMeans[c] += batch.Moments.Mean[c];
                sumStds[c] += std[c];
            }
        }
        if (batches == 0)
            throw new InvalidDataException($"No readable images among {total}: {failures.Count} failed.");
        return new NormStatsResult(sumMeans.Select(s => s / batches).ToArray(), sumStds.Select(s => s / batches).ToArray(),
            imageCount, pixels, failures, NormStatsEstimator.Neuston);
    }

    private bool TryHistograms(string path, out long[][]? histograms, out ImageFailure? error)
    {
        histograms = null;
        error = null;
        DecodedImage image;
        try
        {
            image = _source.Load(path);
        }
        catch (Exception e) when (e is InvalidDataException or FileNotFoundException or IOException or UnauthorizedAccessException)
        {
            error = new ImageFailure(path, e.Message);
            return false;
        }
        var length = _size * _size * image.Channels;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var resized = buffer.AsSpan(0, length);
            PillowResize.Resize(image.Pixels, image.Width, image.Height, image.Channels, resized, _size, _size);
            histograms = [new long[256], new long[256], new long[256]];
            if (image.Channels == 1)
            {
                foreach (var v in resized)
                    histograms[0][v]++;
                histograms[0].CopyTo(histograms[1], 0);
                histograms[0].CopyTo(histograms[2], 0);
            }
            else
            {
                for (var i = 0; i < resized.Length; i += 3)
                {
                    histograms[0][resized[i]]++;
                    histograms[1][resized[i + 1]]++;
                    histograms[2][resized[i + 2]]++;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return true;
    }

    private static ChannelMoments FromHistograms(long[][] histograms)
    {
        var mean = new double[3];
        var m2 = new double[3];
        long n = 0;
        for (var c = 0; c < 3; c++)
            (n, mean[c], m2[c]) = ChannelMoments.FromHistogram(histograms[c]);
        return new ChannelMoments(n, mean, m2);
    }
}
