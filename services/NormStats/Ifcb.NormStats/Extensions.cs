using Azure.Storage.Blobs;
using Ifcb.Contracts;
using Ifcb.NormStats;
using Ifcb.NormStats.Engine.Jobs;
using MassTransit;

namespace Microsoft.Extensions.Hosting;

public static class NormStatsServiceExtensions
{
    /// <summary>
    /// The NormStats service's wiring: gRPC, the job coordinator over blob storage, and the bus. Shards are taken one
    /// at a time per instance (each uses every core), so shards spread over instances and a dead instance holds at most
    /// one unacknowledged shard, which RabbitMQ redelivers.
    /// </summary>
    public static WebApplicationBuilder AddIfcbNormStatsServices(this WebApplicationBuilder builder)
    {
        builder.Services.AddIfcbGrpc(detailedErrors: builder.Environment.IsDevelopment());
        var jobOptions = builder.Services.AddIfcbJobOptions(builder.Configuration);
        builder.Services.AddSingleton(sp => new NormStatsJobStore(
            sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(NormStatsJobStore.ContainerName),
            sp.GetRequiredService<TimeProvider>()));
        // Datasets are the Training service's: read through the grants it hands out, never from its containers.
        builder.Services.AddSingleton<GrantedDatasetSource>();
        builder.Services.AddSingleton(sp => new NormStatsJobCoordinator(sp.GetRequiredService<NormStatsJobStore>(),
            sp.GetRequiredService<GrantedDatasetSource>(), builder.Configuration.GetValue("Ifcb:NormStatsThreads", 0),
            jobOptions.MaxAttempts));
        builder.Services.AddScoped<NormStatsJobLauncher>();
        builder.Services.AddHostedService<ContainerInitializer>();
        // Sends the shards of jobs planned while the broker was down, resends those of stalled jobs, fails jobs past
        // their deadline or stalled beyond the transient budget.
        builder.Services.AddJobReconciliation("normstats", async (sp, ct) =>
        {
            var bus = sp.GetRequiredService<IBus>();
            var (failed, _) = await sp.GetRequiredService<NormStatsJobCoordinator>().ReconcileAsync(
                (job, shards, token) =>
                    bus.PublishBatch(shards.Select(s => new ComputeNormShard(job.JobId, s.Shard, s.Start, s.Count)), token),
                resendAfter: TimeSpan.FromMinutes(2), giveUpAfter: jobOptions.TransientRetryBudget, ct);
            foreach (var job in failed)
            {
                sp.GetRequiredService<ILogger<NormStatsJobCoordinator>>()
                    .LogWarning("Norm-stats job {JobId} failed: {Reason}", job.JobId, job.Error);
            }
        });

        var requestSlots = Math.Max(1, builder.Configuration.GetValue("Ifcb:NormStatsRequestSlots", 8));
        // Two shards at a time: one shard's downloads and bookkeeping (storing its partial, the job record) overlap the
        // other's decoding, instead of leaving the cores idle between shards.
        var shardsAtOnce = Math.Clamp(builder.Configuration.GetValue("Ifcb:NormStatsShardsAtOnce", 2), 1, 16);
        builder.AddIfcbMessaging("normstats", bus =>
        {
            bus.AddConsumer<ComputeNormShardConsumer>().Endpoint(e =>
            {
                e.PrefetchCount = shardsAtOnce;
                e.ConcurrentMessageLimit = shardsAtOnce;
            });
            bus.AddConsumer<ComputeNormShardFaultConsumer>();
            // A request waits for its job's shards, which run on the shard endpoint, so waiting never blocks them.
            bus.AddConsumer<ComputeNormStatsConsumer>().Endpoint(e =>
            {
                e.PrefetchCount = requestSlots;
                e.ConcurrentMessageLimit = requestSlots;
            });
        });
        return builder;
    }

    /// <summary>Creates the service's blob containers once at start-up.</summary>
    private sealed class ContainerInitializer(NormStatsJobStore jobs) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => jobs.EnsureContainerAsync(cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
