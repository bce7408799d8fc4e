using Ifcb.Contracts;
using Ifcb.Data.Imaging;
using Ifcb.Platform;

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
/// <see cref="Validate"/> bounds batch × size (see <see cref="Limits.CheckBatch"/>). With <see cref="SampleWeights"/>
/// (one non-negative weight per image) each epoch draws as many images as the list holds, with replacement, image i with
/// probability weight[i] / Σ weight, from (seed, epoch) like the shuffle; <see cref="Shuffle"/> is then irrelevant.
/// </summary>
public sealed record LoaderOptions(
    PreprocessOptions Preprocess,
    int BatchSize = Defaults.BatchSize,
    bool Shuffle = false,
    int Seed = 0,
    bool Training = false,
    int DecodeWorkers = 0,
    int PrefetchBatches = 2,
    CorruptImagePolicy CorruptImages = CorruptImagePolicy.Skip,
    IReadOnlyList<double>? SampleWeights = null)
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
        if (SampleWeights is { } weights && (weights.Any(w => !double.IsFinite(w) || w < 0) || !(weights.Sum() > 0)))
            throw IfcbException.InvalidArgument("sample weights must be finite, non-negative and not all zero.");
    }
}
