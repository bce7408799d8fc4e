using Ifcb.Contracts;
using Ifcb.NormStats.Engine.Jobs;
using MassTransit;

namespace Ifcb.NormStats;

/// <summary>Starts a job (or answers from the cache) and sends its shards to the workers: shared by the gRPC API and the bus request.</summary>
public sealed class NormStatsJobLauncher(NormStatsJobCoordinator coordinator, IPublishEndpoint bus, ILogger<NormStatsJobLauncher> logger)
{
    /// <exception cref="ArgumentException">Invalid options or dataset name.</exception>
    /// <exception cref="KeyNotFoundException">No such dataset.</exception>
    /// <exception cref="NoImagesAfterFiltersException">No image passes the filters.</exception>
    public async Task<NormStatsJobRecord> LaunchAsync(string dataset, NormStatsJobOptions options, string? jobId, CancellationToken cancellationToken)
    {
        var (job, created) = await coordinator.StartAsync(dataset, options, jobId, cancellationToken);
        if (job.IsTerminal)
            return job;
        // A repeated request finds its job; shards never started are sent again in case the first sender died
        // before sending them (a duplicate shard is computed twice at worst, and counted once).
        var toSend = created ? job.Shards : job.Shards.Where(s => s.State == ShardState.Pending).ToList();
        await bus.PublishBatch(toSend.Select(s => new ComputeNormShard(job.JobId, s.Shard, s.Start, s.Count)), cancellationToken);
        if (created)
            logger.LogInformation("Norm-stats job {JobId}: {Images} images of {Dataset} in {Shards} shards", job.JobId, job.ImagesTotal, dataset, job.Shards.Count);
        return job;
    }
}
