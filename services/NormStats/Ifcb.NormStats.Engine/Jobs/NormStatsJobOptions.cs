using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Ifcb.Data.Datasets;

namespace Ifcb.NormStats.Engine.Jobs;

/// <summary>
/// What a norm-stats job computes (neuston CALC_IMG_NORM's flags) and how it is split. Zero/empty values mean the
/// defaults, as in the proto: resize 299, class-min 2, no class-max, seed 1, shard size 2000.
/// </summary>
public sealed record NormStatsJobOptions
{
    public const int DefaultResize = 299;
    public const int MaxResize = Ifcb.Platform.Limits.MaxResize;
    public const int DefaultShardSize = 2000;
    public const int MaxShardSize = Ifcb.Platform.Limits.MaxShardSize;

    public int Resize { get; init; } = DefaultResize;
    public string? ClassConfigCsv { get; init; }
    public string? ClassConfigColumn { get; init; }
    public int ClassMin { get; init; } = 2;
    public int? ClassMax { get; init; }
    public long Seed { get; init; } = 1;
    public NormStatsEstimator Estimator { get; init; } = NormStatsEstimator.Exact;
    public int ShardSize { get; init; } = DefaultShardSize;

    /// <summary>Replaces the proto's "unset" zeros by the defaults (negative values stay, and fail validation).</summary>
    public NormStatsJobOptions WithDefaults() => this with
    {
        Resize = Resize != 0 ? Resize : DefaultResize,
        ClassConfigCsv = string.IsNullOrWhiteSpace(ClassConfigCsv) ? null : ClassConfigCsv,
        ClassConfigColumn = string.IsNullOrWhiteSpace(ClassConfigColumn) ? null : ClassConfigColumn.Trim(),
        ClassMin = ClassMin != 0 ? ClassMin : 2,
        ClassMax = ClassMax != 0 ? ClassMax : null,
        Seed = Seed != 0 ? Seed : 1,
        ShardSize = ShardSize != 0 ? ShardSize : DefaultShardSize,
    };

    /// <summary>Checks the options and returns the dataset filters they describe.</summary>
    /// <exception cref="ArgumentException">An option is invalid; the message names it and the fix.</exception>
    public DatasetOptions ToDatasetOptions()
    {
        if (Resize is < 1 or > MaxResize)
            throw new ArgumentException(
                $"resize {Resize} is out of range; give 1-{MaxResize} pixels (neuston uses 224 or 299).", nameof(Resize));
        if (ShardSize is < 1 or > MaxShardSize)
            throw new ArgumentException(
                $"shard_size {ShardSize} is out of range; give 1-{MaxShardSize} images per shard (default {DefaultShardSize}).",
                nameof(ShardSize));
        if (ClassMin < 1)
            throw new ArgumentException($"class_min {ClassMin} must be at least 1.", nameof(ClassMin));
        if (ClassMax is < 0)
            throw new ArgumentException(
                $"class_max {ClassMax} is negative; give 0 for no cap or a count above class_min.", nameof(ClassMax));
        if (ClassMax is { } max && max <= Math.Max(1, ClassMin))
            throw new ArgumentException($"class_max {max} must be greater than class_min {ClassMin}.", nameof(ClassMax));
        if (!Enum.IsDefined(Estimator))
            throw new ArgumentException($"estimator {(int)Estimator} is unknown; use exact or neuston.", nameof(Estimator));
        ClassConfig? config = null;
        if (ClassConfigCsv is not null)
        {
            if (ClassConfigColumn is null)
                throw new ArgumentException("class_config_column is required with class_config_csv: name the CSV column to use.",
                    nameof(ClassConfigColumn));
            try
            {
                config = ClassConfig.Parse(ClassConfigCsv, ClassConfigColumn);
            }
            catch (InvalidDataException e)
            {
                throw new ArgumentException(e.Message, nameof(ClassConfigCsv), e);
            }
        }
        else if (ClassConfigColumn is not null)
            throw new ArgumentException("class_config_column is set but class_config_csv is empty; send the CSV text too, or neither.",
                nameof(ClassConfigColumn));
        // The dataset seed is the low 32 bits of the job seed, as Training derives it, so img_norm=auto sees Training's images.
        return new DatasetOptions(ClassMin, ClassMax, config, unchecked((int)Seed));
    }

    /// <summary>
    /// Images per shard message. The neuston estimator needs whole batches
    /// (<see cref="NormStatsCalculator.NeustonBatchSize"/>) in every shard, so its shard size is rounded up to a
    /// multiple of the batch size; the exact estimator uses the size as given.
    /// </summary>
    public int EffectiveShardSize => Estimator == NormStatsEstimator.Neuston
        ? (int)Math.Ceiling(Math.Max(1, ShardSize) / (double)NormStatsCalculator.NeustonBatchSize) * NormStatsCalculator.NeustonBatchSize
        : Math.Max(1, ShardSize);

    /// <summary>
    /// The options that determine the result, one canonical line: what a cached result is keyed by (with the dataset
    /// fingerprint). The shard size is left out (it does not change the answer beyond rounding), and so is the seed when
    /// nothing is sampled; the class-config enters as its parsed entries, so formatting of the CSV does not matter.
    /// </summary>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    public string CanonicalKey()
    {
        var dataset = ToDatasetOptions();
        var key = new StringBuilder();
        key.Append(CultureInfo.InvariantCulture,
            $"v1;estimator={Estimator.ToString().ToLowerInvariant()};resize={Resize};class_min={dataset.EffectiveClassMin}");
        if (ClassMax is { } max)
            key.Append(CultureInfo.InvariantCulture, $";class_max={max};seed={dataset.Seed}");
        if (dataset.ClassConfig is { } config)
        {
            key.Append(";class_config=");
            foreach (var entry in config.Entries)
            {
                key.Append(CultureInfo.InvariantCulture,
                    $"{entry.BaseClass.Length}:{entry.BaseClass}>{entry.Action}>{entry.Target?.Length ?? -1}:{entry.Target}|");
            }
        }
        return key.ToString();
    }

    /// <summary>SHA-256 (lowercase hex) of <see cref="CanonicalKey"/>: the options part of a cache blob's name.</summary>
    public string CacheHash() => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(CanonicalKey())));
}
