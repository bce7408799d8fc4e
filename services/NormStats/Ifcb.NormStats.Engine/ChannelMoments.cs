namespace Ifcb.NormStats.Engine;

/// <summary>
/// Running per-channel moments of pixel values: count <see cref="N"/> (pixels per channel), <see cref="Mean"/> and
/// <see cref="M2"/> (sum of squared deviations), in double. Partials from any split of the images combine with
/// <see cref="Merge"/> (Chan et al.), which is associative and commutative up to rounding, so shards can be computed
/// anywhere and merged in any order.
/// </summary>
public sealed record ChannelMoments(long N, IReadOnlyList<double> Mean, IReadOnlyList<double> M2)
{
    public static ChannelMoments Empty { get; } = new(0, [0, 0, 0], [0, 0, 0]);

    /// <summary>Population variance (ddof = 0) per channel.</summary>
    public IReadOnlyList<double> Variance => N == 0 ? [double.NaN, double.NaN, double.NaN] : M2.Select(m => m / N).ToArray();

    /// <summary>Population standard deviation per channel.</summary>
    public IReadOnlyList<double> Std => Variance.Select(Math.Sqrt).ToArray();

    public ChannelMoments Merge(ChannelMoments other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.N == 0)
            return this;
        if (N == 0)
            return other;
        var n = N + other.N;
        var mean = new double[3];
        var m2 = new double[3];
        for (var c = 0; c < 3; c++)
        {
            var delta = other.Mean[c] - Mean[c];
            mean[c] = Mean[c] + (delta * other.N / n);
            m2[c] = M2[c] + other.M2[c] + (delta * delta * ((double)N * other.N / n));
        }
        return new ChannelMoments(n, mean, m2);
    }

    public bool Equals(ChannelMoments? other) =>
        other is not null && N == other.N && Mean.SequenceEqual(other.Mean) && M2.SequenceEqual(other.M2);

    public override int GetHashCode() => HashCode.Combine(N, Mean[0], M2[0]);

    public static ChannelMoments MergeAll(IEnumerable<ChannelMoments> parts) => parts.Aggregate(Empty, (a, b) => a.Merge(b));

    /// <summary>
    /// Exact moments of one channel given a 256-bin histogram of 8-bit values, measured in units of value/255 (float32, as
    /// ToTensor).
    /// </summary>
    internal static (long N, double Mean, double M2) FromHistogram(ReadOnlySpan<long> histogram)
    {
        long n = 0;
        double sum = 0;
        for (var v = 0; v < 256; v++)
        {
            n += histogram[v];
            sum += histogram[v] * PixelValue(v);
        }
        if (n == 0)
            return (0, 0, 0);
        var mean = sum / n;
        double m2 = 0;
        for (var v = 0; v < 256; v++)
        {
            var d = PixelValue(v) - mean;
            m2 += histogram[v] * d * d;
        }
        return (n, mean, m2);
    }

    /// <summary>A pixel byte as the model sees it: float32 <c>v / 255</c>, widened to double.</summary>
    public static double PixelValue(int value) => value / 255f;
}

/// <summary>Mean and population std per channel, with the img-norm to train with.</summary>
public sealed record NormStatsResult(
    IReadOnlyList<double> Mean,
    IReadOnlyList<double> Std,
    long ImageCount,
    long PixelsPerChannel,
    IReadOnlyList<Ifcb.Data.Loading.ImageFailure> Failures,
    NormStatsEstimator Estimator)
{
    /// <summary>The statistics as an img-norm; its text, "MEAN STD" (one value each when the channels agree, as for gray
    /// images), is ready to paste after <c>--img-norm</c>.</summary>
    public Ifcb.Contracts.ImgNorm ImgNorm => new(Mean, Std);
}

/// <summary>Which estimator produced a result.</summary>
public enum NormStatsEstimator
{
    /// <summary>Mean and population std over all pixels of all images (Welford/Chan, double).</summary>
    Exact,

    /// <summary>neuston CALC_IMG_NORM: average over fixed-size batches (dataset order) of per-batch mean and per-batch std.</summary>
    Neuston,
}
