using Azure.Storage.Blobs;
using Ifcb.NormStats;
using Ifcb.NormStats.Engine.Jobs;

namespace Microsoft.Extensions.Hosting;

public static class NormStatsServiceExtensions
{
    /// <summary>The container the Training service's Datasets API stores datasets in.</summary>
    public const string DatasetsContainer = "datasets";

    /// <summary>
    /// The NormStats service's wiring: gRPC, the job coordinator over blob storage, and the bus. Shards are taken one
    /// at a time per instance (each uses every core), so shards spread over instances and a dead instance holds at most
    /// one unacknowledged shard, which RabbitMQ redelivers.
    /// </summary>
    public static WebApplicationBuilder AddIfcbNormStatsServices(this WebApplicationBuilder builder)
    {
        builder.Services.AddIfcbGrpc(detailedErrors: builder.Environment.IsDevelopment());
        builder.Services.AddSingleton(sp => new NormStatsJobStore(sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(NormStatsJobStore.ContainerName)));
        builder.Services.AddSingleton(sp => new NormStatsJobCoordinator(sp.GetRequiredService<NormStatsJobStore>(),
            sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(DatasetsContainer),
            builder.Configuration.GetValue("Ifcb:NormStatsThreads", 0)));
        builder.Services.AddScoped<NormStatsJobLauncher>();
        builder.Services.AddHostedService<ContainerInitializer>();

        var requestSlots = Math.Max(1, builder.Configuration.GetValue("Ifcb:NormStatsRequestSlots", 8));
        builder.AddIfcbMessaging("normstats", bus =>
        {
            bus.AddConsumer<ComputeNormShardConsumer>().Endpoint(e =>
            {
                e.PrefetchCount = 1;
                e.ConcurrentMessageLimit = 1;
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
    private sealed class ContainerInitializer(NormStatsJobStore jobs, BlobServiceClient blobs) : IHostedService
    {
        public async Task StartAsync(CancellationToken cancellationToken)
        {
            await jobs.EnsureContainerAsync(cancellationToken);
            await blobs.GetBlobContainerClient(DatasetsContainer).CreateIfNotExistsAsync(cancellationToken: cancellationToken);
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
