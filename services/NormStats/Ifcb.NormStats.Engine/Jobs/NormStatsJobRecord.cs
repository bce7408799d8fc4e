using System.Globalization;
using System.Text.Json.Serialization;
using Ifcb.Data.Datasets;
using Ifcb.Platform.Jobs;

namespace Ifcb.NormStats.Engine.Jobs;

public enum ShardState { Pending, Running, Done }

/// <summary>
/// One image of a job, in the job's (neuston) order: class folder, file name, SHA-256 from the dataset manifest, and for
/// a sharded dataset where it lies (shard, offset, size) so a worker reads it by range.
/// </summary>
public sealed record JobImage(string Class, string File, string Sha256)
{
    /// <summary>How the image is named in results and failure lists: <c>class/file</c> within the dataset.</summary>
    public string DatasetPath => $"{Class}/{File}";

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Shard { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? Offset { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? Size { get; init; }

    public static JobImage Of(DatasetFile file) =>
        new(file.Class, file.File, file.Sha256) { Shard = file.Shard, Offset = file.Offset, Size = file.Shard is null ? null : file.Size };

    public DatasetFile ToDatasetFile() => new(Class, File, Size ?? 0, Sha256) { Shard = Shard, Offset = Offset };
}

/// <summary>A shard: images [Start, Start+Count) of the job's image list, and who worked on it.</summary>
public sealed record ShardStatus
{
    public required int Shard { get; init; }
    public required int Start { get; init; }
    public required int Count { get; init; }
    public ShardState State { get; init; } = ShardState.Pending;
    /// <summary>The instance that is computing it (Running) or whose partial was stored (Done).</summary>
    public string? Worker { get; init; }
    /// <summary>How many times a worker started it; above 1 after a redelivery.</summary>
    public int Attempts { get; init; }
    /// <summary>
    /// The instances that started it, in order (a shard that keeps killing its workers names them when it fails the job).
    /// </summary>
    public List<string> Workers { get; init; } = [];
    /// <summary>Images that went into the statistics (Done only).</summary>
    public int Images { get; init; }
    /// <summary>Images that could not be read (Done only).</summary>
    public int Failed { get; init; }
}

/// <summary>An image left out of the statistics, and why.</summary>
public sealed record CorruptImage(string Path, string Reason);

/// <summary>A finished computation: what is returned to callers and stored in the cache.</summary>
public sealed record NormStatsOutcome
{
    public required IReadOnlyList<double> Mean { get; init; }
    public required IReadOnlyList<double> Std { get; init; }
    /// <summary>
    /// The statistics as an img-norm (its text is ready to paste after <c>--img-norm</c>). Not stored: documents written
    /// before it was derived carry an "ImgNorm" string, which is ignored on reading.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public Ifcb.Contracts.ImgNorm ImgNorm => new(Mean, Std);
    public required long Images { get; init; }
    public required long PixelsPerChannel { get; init; }
    public required NormStatsEstimator Estimator { get; init; }
    public required int Resize { get; init; }
    public required IReadOnlyList<CorruptImage> CorruptImages { get; init; }
    public required string DatasetFingerprint { get; init; }
    public required string OptionsKey { get; init; }
    /// <summary>The job that computed it (a cached answer keeps the original job's id).</summary>
    public required string ComputedByJob { get; init; }
    public DateTimeOffset ComputedAt { get; init; } = DateTimeOffset.UtcNow;
}

/// <summary>
/// A norm-stats job as stored in blob storage (<c>jobs/{id}/job.json</c>): the system of record for its state. Its work
/// is spread over shards that any worker may compute at once, so the job has no single lease holder (it is
/// <see cref="JobRecord{TSelf}.Begin"/>-ed, not started); each shard counts its own attempts.
/// </summary>
public sealed record NormStatsJobRecord : JobRecord<NormStatsJobRecord>
{
    public required string Dataset { get; init; }
    public required string DatasetFingerprint { get; init; }
    public required NormStatsJobOptions Options { get; init; }
    public int ImagesTotal { get; init; }
    public List<ShardStatus> Shards { get; init; } = [];
    public bool Cached { get; init; }
    public NormStatsOutcome? Result { get; init; }
    public DateTimeOffset? StartedAt { get; init; }

    public int ShardsDone => Shards.Count(s => s.State == ShardState.Done);

    /// <summary>Images of the shards whose partials are stored, each shard counted once however often it was delivered.</summary>
    public long ImagesDone => Shards.Where(s => s.State == ShardState.Done).Sum(s => (long)s.Count);

    /// <summary>Images per second since the first shard started (0 before, and for a cached answer).</summary>
    public double ImagesPerSecond
    {
        get
        {
            if (StartedAt is not { } started || Cached)
                return 0;
            var seconds = ((EndedAt ?? UpdatedAt) - started).TotalSeconds;
            return seconds > 0 ? ImagesDone / seconds : 0;
        }
    }

    public override string DescribeProgress() =>
        string.Create(CultureInfo.InvariantCulture, $"{ShardsDone} of {Shards.Count} shards ({ImagesDone} of {ImagesTotal} images)");
}

/// <summary>
/// A shard's stored partial (<c>jobs/{id}/shards/{shard}.json</c>): one moments partial for the exact estimator, one per
/// batch (<see cref="NormStatsCalculator.NeustonBatchSize"/> images) for the neuston estimator, in image order; plus the
/// images it could not read.
/// </summary>
public sealed record ShardPartialDocument
{
    public required int Shard { get; init; }
    public required string Worker { get; init; }
    public required List<StoredPartial> Partials { get; init; }
    public DateTimeOffset ComputedAt { get; init; } = DateTimeOffset.UtcNow;

    public static ShardPartialDocument From(int shard, string worker, IEnumerable<NormStatsPartial> partials) => new()
    {
        Shard = shard,
        Worker = worker,
        Partials = [.. partials.Select(p => new StoredPartial(p.Moments.N, [.. p.Moments.Mean], [.. p.Moments.M2], p.ImageCount,
            [.. p.Failures.Select(f => new CorruptImage(f.Path, f.Reason))]))],
    };

    public IEnumerable<NormStatsPartial> ToPartials() => Partials.Select(p => new NormStatsPartial(
        new ChannelMoments(p.N, p.Mean, p.M2), p.Images,
        [.. p.Failures.Select(f => new Ifcb.Data.Loading.ImageFailure(f.Path, f.Reason))]));
}

/// <summary>
/// Moments as stored: doubles round-trip exactly through System.Text.Json, so a merge of stored partials equals a merge in
/// memory.
/// </summary>
public sealed record StoredPartial(long N, double[] Mean, double[] M2, int Images, List<CorruptImage> Failures);
