namespace Ifcb.Contracts;

/// <summary>Options of a norm-stats computation (neuston CALC_IMG_NORM's flags).</summary>
public sealed record NormStatsOptions(
    int Resize,
    string? ClassConfigCsv,
    string? ClassConfigColumn,
    int ClassMin,
    int? ClassMax,
    long Seed,
    bool NeustonEstimator,
    int ShardSize);

/// <summary>
/// Request (request/response): compute, or return the cached, statistics for a dataset. Answered at once with
/// <see cref="NormStatsResult"/>: the statistics when they are known, else <c>Finished = false</c> and the job's id.
/// With <paramref name="JobId"/> set (32 lowercase hex digits) a repeated request finds the same job, so a caller
/// polls by asking again; nothing holds a broker message for the length of a computation.
/// </summary>
public sealed record ComputeNormStats(string Dataset, NormStatsOptions Options, string? JobId = null);

/// <summary>
/// The statistics of a dataset (<paramref name="Finished"/>, <paramref name="ImgNorm"/> set), the reason they could not
/// be computed (<paramref name="Error"/> set), or neither yet (the job <paramref name="JobId"/> is still running: ask
/// again).
/// </summary>
public sealed record NormStatsResult(
    string JobId,
    string Dataset,
    string? DatasetFingerprint,
    ImgNorm? ImgNorm,
    long Images,
    bool Cached,
    string? Error,
    bool Finished = true);

/// <summary>
/// Command: compute the partial moments of images [<paramref name="Start"/>,
/// <paramref name="Start"/>+<paramref name="Count"/>) of a job's image list.
/// </summary>
public sealed record ComputeNormShard(string JobId, int Shard, int Start, int Count);

/// <summary>Event: a shard's partial moments are stored (blob normstats/jobs/{job}/shards/{shard:D6}.json, created once).</summary>
public sealed record NormShardComputed(string JobId, int Shard, int Images, string Worker);

/// <summary>Event: a norm-stats job finished.</summary>
public sealed record NormStatsComputed(string JobId, string Dataset, string DatasetFingerprint, ImgNorm ImgNorm, long Images,
    int CorruptImages);
