using System.Globalization;

namespace Ifcb.Data.Datasets;

/// <summary>How long replaced or deleted dataset content stays readable (see <see cref="BlobDatasetStore"/>).</summary>
public sealed record DatasetStoreOptions
{
    public static readonly TimeSpan DefaultGarbageGrace = TimeSpan.FromHours(1);

    /// <summary>
    /// A generation stays readable for this long after it was replaced or deleted, and no blob modified within this
    /// period is ever collected. Longer than the longest download of a whole dataset by a job (Materialize, NormStats).
    /// </summary>
    public TimeSpan GarbageGrace { get; init; } = DefaultGarbageGrace;

    public const long DefaultShardBytes = 64L * 1024 * 1024;

    /// <summary>
    /// The size a shard reaches before it may end (it ends by 4× this): large enough that storage moves whole shards at
    /// full speed, small enough that a re-upload resends little around a changed image. Tests use a few kilobytes.
    /// </summary>
    public long ShardBytes { get; init; } = DefaultShardBytes;

    /// <summary>
    /// Once a shard holds <see cref="ShardBytes"/>, it ends after an image whose name hashes to one of this many buckets
    /// (so about this many images later): where shards end then depends on the names, not on where the upload started.
    /// </summary>
    public int ShardBoundaryOneIn { get; init; } = 16;

    /// <summary>The grace period as error messages state it ("60 min", "2 s").</summary>
    internal string GraceText => GarbageGrace >= TimeSpan.FromMinutes(1)
        ? string.Create(CultureInfo.InvariantCulture, $"{GarbageGrace.TotalMinutes:0.#} min")
        : string.Create(CultureInfo.InvariantCulture, $"{GarbageGrace.TotalSeconds:0.#} s");
}
