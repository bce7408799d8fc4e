using Ifcb.Contracts;
using NormStatsEstimator = Ifcb.NormStats.Engine.NormStatsEstimator;
using Ifcb.NormStats.Engine.Jobs;
using MassTransit;

namespace Ifcb.NormStats;

/// <summary>
/// The bus request Training sends for <c>img_norm=auto</c>: answers from the cache, or runs the sharded job and answers
/// when it ends. Bad requests are answered with <see cref="NormStatsResult.Error"/> set, never with a fault. The job id
/// is the request id, so a redelivered request (its first handler died) waits for the same job instead of starting another.
/// </summary>
public sealed class ComputeNormStatsConsumer(NormStatsJobLauncher launcher, NormStatsJobStore jobs, ILogger<ComputeNormStatsConsumer> logger)
    : IConsumer<ComputeNormStats>
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    public async Task Consume(ConsumeContext<ComputeNormStats> context)
    {
        var request = context.Message;
        var jobId = (context.RequestId ?? context.MessageId ?? Guid.NewGuid()).ToString("N");
        NormStatsJobRecord job;
        try
        {
            job = await launcher.LaunchAsync(request.Dataset, request.Options.ToJobOptions(), jobId, context.CancellationToken);
        }
        catch (Exception e) when (e is ArgumentException or KeyNotFoundException or NoImagesAfterFiltersException)
        {
            logger.LogInformation("ComputeNormStats for {Dataset} refused: {Reason}", request.Dataset, e.Message);
            await context.RespondAsync(Failed(jobId, request.Dataset, null, e.Message));
            return;
        }
        while (!job.IsTerminal)
        {
            await Task.Delay(PollInterval, context.CancellationToken);
            job = await jobs.GetAsync(job.JobId, context.CancellationToken)
                ?? throw new InvalidOperationException($"Norm-stats job {job.JobId} vanished while a request waited for it.");
        }
        await context.RespondAsync(job.State == NormStatsJobState.Succeeded
            ? new NormStatsResult(job.JobId, job.Dataset, job.DatasetFingerprint, job.Result!.Mean, job.Result.Std, job.Result.ImgNorm,
                job.Result.Images, job.Cached, null)
            : Failed(job.JobId, job.Dataset, job.DatasetFingerprint, job.Error ?? "the job failed"));
    }

    private static NormStatsResult Failed(string jobId, string dataset, string? fingerprint, string error) =>
        new(jobId, dataset, fingerprint, [], [], "", 0, false, error);
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
