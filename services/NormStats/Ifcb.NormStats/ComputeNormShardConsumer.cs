using Ifcb.Contracts;
using Ifcb.NormStats.Engine.Jobs;
using Ifcb.Platform;
using Ifcb.Platform.Jobs;
using MassTransit;

namespace Ifcb.NormStats;

/// <summary>
/// Computes one shard of a job (any instance may take it). The message is acknowledged only after the partial is
/// stored and counted, so a worker that dies mid-shard leaves it to RabbitMQ to redeliver; the store counts it once.
/// </summary>
public sealed class ComputeNormShardConsumer(NormStatsJobCoordinator coordinator, ServiceIdentity identity,
    ILogger<ComputeNormShardConsumer> logger) : IConsumer<ComputeNormShard>
{
    public async Task Consume(ConsumeContext<ComputeNormShard> context)
    {
        var message = context.Message;
        ShardOutcome outcome;
        try
        {
            outcome = await coordinator.RunShardAsync(message.JobId, message.Shard, identity.InstanceId, context.CancellationToken);
        }
        catch (Exception e) when (Faults.IsTransient(e))
        {
            // Storage or the broker is down: the bus retries in process a few times (MessagingExtensions); after the
            // last retry the shard is left to the reconciler, which sends the shards of a stalled job again, instead of
            // failing a job that only waited out an outage.
            if (context.GetRetryAttempt() < MessagingExtensions.RetryLimit)
                throw;
            logger.LogWarning("Norm-stats job {JobId} shard {Shard}: {Reason}; left for the reconciler to send again.", message.JobId,
                message.Shard, Faults.Reason(e));
            return;
        }
        catch (InvalidOperationException e)
        {
            // The dataset changed under the job: retrying cannot help.
            logger.LogWarning("Norm-stats job {JobId} shard {Shard} failed: {Reason}", message.JobId, message.Shard, e.Message);
            await coordinator.FailAsync(message.JobId, e.Message, CancellationToken.None);
            return;
        }
        if (outcome.Job is null)
        {
            logger.LogWarning("ComputeNormShard for unknown job {JobId}; ignored", message.JobId);
            return;
        }
        if (outcome.Counted)
        {
            var shard = outcome.Job.Shards[message.Shard];
            await context.Publish(new NormShardComputed(message.JobId, message.Shard, shard.Images, shard.Worker ?? identity.InstanceId));
        }
        if (outcome.Finished && outcome.Job.State == JobState.Succeeded)
        {
            await context.Publish(NormStatsEvents.Computed(outcome.Job));
            logger.LogInformation("Norm-stats job {JobId} succeeded: --img-norm {ImgNorm} ({Images} images, {Rate:0} images/s)",
                outcome.Job.JobId, outcome.Job.Result!.ImgNorm, outcome.Job.Result.Images, outcome.Job.ImagesPerSecond);
        }
        else if (outcome.Finished)
            logger.LogWarning("Norm-stats job {JobId} failed: {Reason}", outcome.Job.JobId, outcome.Job.Error);
    }
}

/// <summary>A shard that kept failing after the retries (storage down, a bug): the job cannot finish, so it fails visibly.</summary>
public sealed class ComputeNormShardFaultConsumer(NormStatsJobCoordinator coordinator) : IConsumer<Fault<ComputeNormShard>>
{
    public async Task Consume(ConsumeContext<Fault<ComputeNormShard>> context)
    {
        var shard = context.Message.Message;
        var reason = context.Message.Exceptions.FirstOrDefault() is { } e
            ? Faults.ScrubPaths($"{e.ExceptionType}: {e.Message.Split('\n')[0]}")
            : "unknown error";
        await coordinator.FailAsync(shard.JobId, $"Shard {shard.Shard} failed after retries: {reason}", context.CancellationToken);
    }
}

internal static class NormStatsEvents
{
    public static NormStatsComputed Computed(NormStatsJobRecord job) => new(job.JobId, job.Dataset, job.DatasetFingerprint,
        job.Result!.ImgNorm, job.Result.Images, job.Result.CorruptImages.Count);
}
