using System.Globalization;
using Ifcb.NormStats.Engine;
using Ifcb.NormStats.Engine.Jobs;
using Ifcb.Protos;

namespace Ifcb.NormStats;

/// <summary>proto ⇄ engine records for norm-stats jobs.</summary>
internal static class NormStatsJobMapping
{
    public static NormStatsJobOptions ToJobOptions(this NormOptions? o) => o is null
        ? new NormStatsJobOptions().WithDefaults()
        : new NormStatsJobOptions
        {
            Resize = o.Resize,
            ClassConfigCsv = o.ClassConfigCsv,
            ClassConfigColumn = o.ClassConfigColumn,
            ClassMin = o.ClassMin,
            ClassMax = o.ClassMax,
            Seed = o.Seed,
            Estimator = o.Estimator switch
            {
                NormEstimator.Exact => NormStatsEstimator.Exact,
                NormEstimator.Neuston => NormStatsEstimator.Neuston,
                var other => (NormStatsEstimator)(-1 - (int)other), // unknown: rejected by validation with its number
            },
            ShardSize = o.ShardSize,
        }.WithDefaults();

    public static NormOptions ToProto(this NormStatsJobOptions o) => new()
    {
        Resize = o.Resize,
        ClassConfigCsv = o.ClassConfigCsv ?? "",
        ClassConfigColumn = o.ClassConfigColumn ?? "",
        ClassMin = o.ClassMin,
        ClassMax = o.ClassMax ?? 0,
        Seed = o.Seed,
        Estimator = o.Estimator.ToProto(),
        ShardSize = o.ShardSize,
    };

    public static NormJob ToProto(this NormStatsJobRecord job)
    {
        var proto = new NormJob
        {
            JobId = job.JobId,
            Dataset = job.Dataset,
            DatasetFingerprint = job.DatasetFingerprint,
            State = job.State switch
            {
                Ifcb.Platform.Jobs.JobState.Queued => NormJobState.Queued,
                Ifcb.Platform.Jobs.JobState.Running => NormJobState.Running,
                Ifcb.Platform.Jobs.JobState.Succeeded => NormJobState.Succeeded,
                Ifcb.Platform.Jobs.JobState.Failed => NormJobState.Failed,
                _ => NormJobState.Unspecified,
            },
            ImagesTotal = job.ImagesTotal,
            ImagesDone = job.Cached ? job.ImagesTotal : job.ImagesDone,
            ShardsTotal = job.Shards.Count,
            ShardsDone = job.ShardsDone,
            ImagesPerSecond = job.ImagesPerSecond,
            Cached = job.Cached,
            Error = job.Error ?? "",
            Options = job.Options.ToProto(),
            CreatedAt = job.CreatedAt.ToString("O", CultureInfo.InvariantCulture),
            CompletedAt = job.EndedAt?.ToString("O", CultureInfo.InvariantCulture) ?? "",
            Deadline = job.Deadline?.ToString("O", CultureInfo.InvariantCulture) ?? "",
        };
        if (job.Result is { } result)
            proto.Result = result.ToProto();
        proto.Shards.AddRange(job.Shards.Select(s => new NormShard
        {
            Shard = s.Shard,
            Start = s.Start,
            Count = s.Count,
            State = s.State switch
            {
                ShardState.Running => NormShardState.Running,
                ShardState.Done => NormShardState.Done,
                _ => NormShardState.Pending,
            },
            Worker = s.Worker ?? "",
            Attempts = s.Attempts,
            Images = s.Images,
            Failed = s.Failed,
        }));
        return proto;
    }

    public static NormResult ToProto(this NormStatsOutcome r)
    {
        var proto = new NormResult
        {
            ImgNorm = r.ImgNorm.ToString(),
            Images = r.Images,
            PixelsPerChannel = r.PixelsPerChannel,
            Estimator = r.Estimator.ToProto(),
            Resize = r.Resize,
            DatasetFingerprint = r.DatasetFingerprint,
            ComputedAt = r.ComputedAt.ToString("O", CultureInfo.InvariantCulture),
            ComputedByJob = r.ComputedByJob,
            OptionsKey = r.OptionsKey,
        };
        proto.Mean.AddRange(r.Mean);
        proto.Std.AddRange(r.Std);
        proto.CorruptImages.AddRange(r.CorruptImages.Select(c => new Ifcb.Protos.CorruptImage { Path = c.Path, Reason = c.Reason }));
        return proto;
    }

    private static NormEstimator ToProto(this NormStatsEstimator e) =>
        e == NormStatsEstimator.Neuston ? NormEstimator.Neuston : NormEstimator.Exact;
}
