using Ifcb.Contracts;
using Ifcb.NormStats.Engine.Jobs;
using Ifcb.Platform;
using Ifcb.Platform.Jobs;
using MassTransit;
using NormStatsEstimator = Ifcb.NormStats.Engine.NormStatsEstimator;

namespace Ifcb.NormStats;

/// <summary>
/// Answers the ComputeNormStats request at once: the statistics when the job (or the cache) has them, the reason when
/// it cannot, else "not finished" with the job's id. The caller polls by asking again with the same job id, so no
/// broker message is held for the length of a computation (which could outlast the broker's consumer timeout).
/// </summary>
public sealed class ComputeNormStatsConsumer(NormStatsJobLauncher launcher, ILogger<ComputeNormStatsConsumer> logger)
    : IConsumer<ComputeNormStats>
{
    public async Task Consume(ConsumeContext<ComputeNormStats> context)
    {
        var request = context.Message;
        var jobId = NormStatsJobStore.IsValidId(request.JobId)
            ? request.JobId!
            : (context.RequestId ?? context.MessageId ?? Guid.NewGuid()).ToString("N");
        NormStatsJobRecord job;
        try
        {
            job = await launcher.LaunchAsync(request.Dataset, request.Options.ToJobOptions(), jobId, context.CancellationToken);
        }
        catch (Exception e) when (e is ArgumentException or KeyNotFoundException or NoImagesAfterFiltersException
                                      || (e is IfcbException ifcb && !ifcb.IsTransient))
        {
            logger.LogInformation("ComputeNormStats for {Dataset} refused: {Reason}", request.Dataset, e.Message);
            await context.RespondAsync(Failed(jobId, request.Dataset, null, Faults.Reason(e)));
            return;
        }
        await context.RespondAsync(job.State switch
        {
            JobState.Succeeded => new NormStatsResult(job.JobId, job.Dataset, job.DatasetFingerprint, job.Result!.ImgNorm,
                job.Result.Images, job.Cached, null),
            JobState.Failed or JobState.Cancelled => Failed(job.JobId, job.Dataset, job.DatasetFingerprint, job.Error ?? "the job failed"),
            _ => new NormStatsResult(job.JobId, job.Dataset, job.DatasetFingerprint, null, 0, false, null, Finished: false),
        });
    }

    private static NormStatsResult Failed(string jobId, string dataset, string? fingerprint, string error) =>
        new(jobId, dataset, fingerprint, null, 0, false, error);
}

internal static class NormStatsContractMapping
{
    public static NormStatsJobOptions ToJobOptions(this NormStatsOptions o) => new NormStatsJobOptions
    {
        Resize = o.Resize,
        ClassConfigCsv = o.ClassConfigCsv,
        ClassConfigColumn = o.ClassConfigColumn,
        ClassMin = o.ClassMin,
        ClassMax = o.ClassMax ?? 0,
        Seed = o.Seed,
        Estimator = o.NeustonEstimator ? NormStatsEstimator.Neuston : NormStatsEstimator.Exact,
        ShardSize = o.ShardSize,
    }.WithDefaults();
}
