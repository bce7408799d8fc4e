using System.Globalization;

namespace Ifcb.Platform;

/// <summary>
/// The bounds on every number, string and list a client can send, in one place. Each is generous for real IFCB work
/// (50–150 classes, ROIs up to ~1,400 px, batches of <see cref="Ifcb.Contracts.Defaults.BatchSize"/>) and small enough
/// that no request can exhaust a worker's memory, overflow an index or spin forever.
/// <see cref="Check(long, long, long, string, string)"/> throws InvalidArgument naming the value, the bound and the
/// constant, so clients, services and engines report a limit alike.
/// </summary>
public static class Limits
{
    /// <summary>Images per training or RUN batch.</summary>
    public const int MaxBatch = 2048;

    /// <summary>
    /// Bytes of one float32 input batch (batch × 3 × resize²× 4): keeps a batch far below libtorch's and .NET's 2 GiB
    /// array limits.
    /// </summary>
    public const long MaxBatchTensorBytes = 1L << 30;

    /// <summary>Model input side in pixels (training, NormStats and checkpoints alike).</summary>
    public const int MinResize = 16;

    /// <inheritdoc cref="MinResize"/>
    public const int MaxResize = 1024;

    public const int MaxEpochs = 10_000;

    /// <summary>Classes of one model (IFCB classifiers have 50–150; a checkpoint claiming more is refused before allocating).</summary>
    public const int MaxClasses = 10_000;

    /// <summary>Characters of one class label.</summary>
    public const int MaxClassNameLength = ResourceName.MaxSegmentLength;

    /// <summary>Images per NormStats shard message.</summary>
    public const int MaxShardSize = 100_000;

    /// <summary>Shards of one NormStats job (the job record lists them all).</summary>
    public const int MaxShards = 10_000;

    /// <summary>Bytes of a class-config CSV sent with a request (stored in the job record).</summary>
    public const int MaxClassConfigBytes = 1 << 20;

    /// <summary>Bytes of a checkpoint's hparams.json (labels, img-norm, ids): read fully into memory, so bounded.</summary>
    public const int MaxHparamsBytes = 4 << 20;

    /// <summary>Characters of a free-text field (img-norm string, device, filter keyword, output pattern).</summary>
    public const int MaxTextLength = 1024;

    /// <summary>Items of a repeated field (output patterns, filter keywords, probe targets).</summary>
    public const int MaxListItems = 256;

    /// <summary>
    /// Pixels of one decoded image: a header declaring more is refused before any allocation (4096² — IFCB ROIs are ≤
    /// ~1.5 Mpx).
    /// </summary>
    public const long MaxImagePixels = 16L * 1024 * 1024;

    /// <summary>Longest deadline a job may carry.</summary>
    public static readonly TimeSpan MaxJobDeadline = TimeSpan.FromDays(30);

    /// <summary>Longest wait of a diagnostics probe.</summary>
    public static readonly TimeSpan MaxProbeTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Throws InvalidArgument unless <paramref name="min"/> ≤ <paramref name="value"/> ≤ <paramref name="max"/>.</summary>
    /// <param name="field">The field as the caller knows it, e.g. "batch".</param>
    /// <param name="limit">The constant that holds the bound, e.g. nameof(Limits.MaxBatch), so operators can find it.</param>
    /// <exception cref="IfcbException">InvalidArgument naming the field, the range and the limit.</exception>
    public static long Check(long value, long min, long max, string field, string limit)
    {
        if (value < min || value > max)
            throw IfcbException.InvalidArgument(string.Create(CultureInfo.InvariantCulture,
                $"{field} is {value}; it must be between {min} and {max} (limit {limit})."));
        return value;
    }

    /// <inheritdoc cref="Check(long, long, long, string, string)"/>
    public static int Check(int value, int min, int max, string field, string limit) =>
        (int)Check((long)value, min, max, field, limit);

    /// <summary>Batch and input side together: the batch tensor must stay under <see cref="MaxBatchTensorBytes"/>.</summary>
    /// <exception cref="IfcbException">InvalidArgument saying how large a batch fits at this resize.</exception>
    public static void CheckBatch(int batch, int resize, string field = "batch")
    {
        Check(batch, 1, MaxBatch, field, nameof(MaxBatch));
        Check(resize, MinResize, MaxResize, "resize", nameof(MaxResize));
        var bytes = BatchTensorBytes(batch, resize);
        if (bytes > MaxBatchTensorBytes)
        {
            var fits = MaxBatchTensorBytes / BatchTensorBytes(1, resize);
            throw IfcbException.InvalidArgument(string.Create(CultureInfo.InvariantCulture,
                $"{field} {batch} at {resize}×{resize} needs {bytes / (1024.0 * 1024 * 1024):0.##} GiB per batch; the limit is " +
                $"{MaxBatchTensorBytes >> 30} GiB (limit {nameof(MaxBatchTensorBytes)}): use a batch of at most {fits} at this size."));
        }
    }

    /// <summary>
    /// Bytes of a float32 batch of <paramref name="batch"/> RGB images of <paramref name="resize"/>² pixels, without
    /// overflow.
    /// </summary>
    public static long BatchTensorBytes(int batch, int resize) => (long)batch * 3 * resize * resize * sizeof(float);

    /// <summary>Throws InvalidArgument when <paramref name="text"/> is longer than <paramref name="max"/> characters.</summary>
    public static string? CheckText(string? text, string field, int max = MaxTextLength)
    {
        if (text is not null && text.Length > max)
            throw IfcbException.InvalidArgument(string.Create(CultureInfo.InvariantCulture,
                $"{field} has {text.Length} characters; the limit is {max}."));
        return text;
    }

    /// <summary>Throws InvalidArgument when a repeated field has more than <paramref name="max"/> items or one is too long.</summary>
    public static IReadOnlyCollection<string> CheckList(IReadOnlyCollection<string> items, string field, int max = MaxListItems,
        int maxItemLength = MaxTextLength)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (items.Count > max)
            throw IfcbException.InvalidArgument(string.Create(CultureInfo.InvariantCulture,
                $"{field} has {items.Count} items; the limit is {max}."));
        foreach (var item in items)
            CheckText(item, field + " item", maxItemLength);
        return items;
    }
}
