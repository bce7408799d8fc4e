using Azure.Storage.Blobs;
using Ifcb.Contracts;
using Ifcb.Data.Datasets;
using Ifcb.Models.Weights;
using Ifcb.Training;
using Ifcb.Training.Engine.Jobs;
using Ifcb.Training.Engine.Sweeps;

namespace Microsoft.Extensions.Hosting;

public static class TrainingServiceExtensions
{
    public const string JobsContainer = "training";
    public const string DatasetsContainer = "datasets";

    /// <summary>The Training service's wiring: gRPC, the bus (TrainModel consumer), job store, datasets, weights store.</summary>
    public static WebApplicationBuilder AddIfcbTrainingServices(this WebApplicationBuilder builder)
    {
        builder.Services.AddIfcbGrpc(detailedErrors: builder.Environment.IsDevelopment());
        builder.Services.AddSingleton(sp => new TrainingJobStore(
            sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(JobsContainer), sp.GetRequiredService<TimeProvider>()));
        builder.Services.AddSingleton(sp => new SweepStore(
            sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(JobsContainer), sp.GetRequiredService<TimeProvider>()));
        builder.Services.AddSingleton<TrainingSubmissions>();
        builder.Services.AddSingleton<SweepCoordinator>();
        builder.Services.AddSingleton(sp => new RunJobStore(
            sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(JobsContainer), sp.GetRequiredService<TimeProvider>()));
        builder.Services.AddSingleton(sp => new BlobDatasetStore(
            sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(DatasetsContainer),
            new DatasetStoreOptions
            {
                GarbageGrace = builder.Configuration.GetValue("Ifcb:DatasetGarbageGrace", DatasetStoreOptions.DefaultGarbageGrace),
                ShardBytes = ShardBytes(builder.Configuration),
            }));
        builder.Services.AddSingleton(sp => new Ifcb.Data.Bins.BlobBinSetStore(
            sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(DatasetsContainer)));
        RegistryCheckpoints.AddRegistryClient(builder.Services);
        builder.Services.AddSingleton<RegistryCheckpoints>();
        builder.Services.AddSingleton<IWeightsStore>(sp => new BlobWeightsStore(sp.GetRequiredService<BlobServiceClient>()));
        builder.Services.AddSingleton<WorkerCache>();
        builder.Services.AddHostedService<ContainerInitializer>();

        // Training and RUN jobs share this worker's slots (Ifcb:TrainingSlots, default 1): a delivery takes the job's
        // lease, is acknowledged and runs in the background (see JobExecutor for why), or goes back to the queue when
        // every slot is busy. The reconciler repairs what crashes and outages leave behind.
        var slots = Math.Max(1, builder.Configuration.GetValue("Ifcb:TrainingSlots", 1));
        builder.Services.AddIfcbJobKernel(builder.Configuration, slots);
        builder.Services.AddSingleton<TrainingJobWork>();
        builder.Services.AddSingleton<RunJobWork>();
        builder.Services.AddSingleton<TrainingReconciliation>();
        builder.Services.AddJobReconciliation("training", (sp, ct) => sp.GetRequiredService<TrainingReconciliation>().SweepAsync(ct));
        builder.AddIfcbMessaging("training", bus =>
        {
            JobQueue.AddJobConsumers(bus, slots);
            bus.AddConsumer<ModelVersionRegisteredConsumer>();
            bus.AddConsumer<ModelRegistrationFailedConsumer>();
            bus.AddConsumer<GrantDatasetReadConsumer>();
            bus.AddRequestClient<ComputeNormStats>();
        });
        return builder;
    }

    /// <summary>Creates the service's blob containers once at start-up.</summary>
    private sealed class ContainerInitializer(TrainingJobStore jobs, BlobServiceClient blobs) : IHostedService
    {
        public async Task StartAsync(CancellationToken cancellationToken)
        {
            await jobs.EnsureContainerAsync(cancellationToken);
            await blobs.GetBlobContainerClient(DatasetsContainer).CreateIfNotExistsAsync(cancellationToken: cancellationToken);
            await blobs.GetBlobContainerClient(BlobWeightsStore.ContainerName).CreateIfNotExistsAsync(cancellationToken: cancellationToken);
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary><c>Ifcb:DatasetShardBytes</c>: the size a dataset shard reaches before it may end, 1 MiB to 1 GiB.</summary>
    private static long ShardBytes(IConfiguration configuration)
    {
        var bytes = configuration.GetValue("Ifcb:DatasetShardBytes", DatasetStoreOptions.DefaultShardBytes);
        return bytes is >= 1024 * 1024 and <= 1024 * 1024 * 1024
            ? bytes
            : throw new InvalidOperationException($"Ifcb:DatasetShardBytes is {bytes}; give 1 MiB to 1 GiB (default 64 MiB).");
    }
}
