using Ifcb.Contracts;
using Ifcb.NormStats.Engine.Jobs;
using Ifcb.Platform.Jobs;
using MassTransit;

namespace Ifcb.NormStats;

/// <summary>
/// Starts a job (or answers from the cache) and sends its shards to the workers: shared by the gRPC API and the bus request.
/// </summary>
public sealed class NormStatsJobLauncher(NormStatsJobCoordinator coordinator, IPublishEndpoint bus, JobKernelOptions options,
    ILogger<NormStatsJobLauncher> logger)
{
    /// <summary>
    /// Plans the job and sends its shards. A repeated request (same job id) finds its job and sends nothing: shards that
    /// were never sent (the broker was down) are sent by the reconciler, which also resends the shards of a stalled job.
    /// </summary>
    /// <exception cref="ArgumentException">Invalid options or dataset name.</exception>
    /// <exception cref="KeyNotFoundException">No such dataset.</exception>
    /// <exception cref="NoImagesAfterFiltersException">No image passes the filters.</exception>
    public async Task<NormStatsJobRecord> LaunchAsync(string dataset, NormStatsJobOptions jobOptions, string? jobId,
        CancellationToken cancellationToken, DateTimeOffset? deadline = null)
    {
        var (job, created) = await coordinator.StartAsync(dataset, jobOptions, jobId, cancellationToken, deadline);
        if (job.IsTerminal || !created)
            return job;
        logger.LogInformation("Norm-stats job {JobId}: {Images} images of {Dataset} in {Shards} shards", job.JobId, job.ImagesTotal,
            dataset, job.Shards.Count);
        return await JobDispatch.SendNewAsync(coordinator.Jobs, job,
            ct => bus.PublishBatch(job.Shards.Select(s => new ComputeNormShard(job.JobId, s.Shard, s.Start, s.Count)), ct), options,
            logger);
    }
}
