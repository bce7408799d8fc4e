using Azure.Storage.Blobs;
using Ifcb.Contracts;
using Ifcb.Data.Datasets;
using Ifcb.Models.Weights;
using Ifcb.Training;
using Ifcb.Training.Engine.Jobs;

namespace Microsoft.Extensions.Hosting;

public static class TrainingServiceExtensions
{
    public const string JobsContainer = "training";
    public const string DatasetsContainer = "datasets";

    /// <summary>The Training service's wiring: gRPC, the bus (TrainModel consumer), job store, datasets, weights store.</summary>
    public static WebApplicationBuilder AddIfcbTrainingServices(this WebApplicationBuilder builder)
    {
        builder.Services.AddIfcbGrpc(detailedErrors: builder.Environment.IsDevelopment());
        builder.Services.AddSingleton(sp => new TrainingJobStore(sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(JobsContainer)));
        builder.Services.AddSingleton(sp => new RunJobStore(sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(JobsContainer)));
        builder.Services.AddSingleton(sp => new BlobDatasetStore(sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(DatasetsContainer)));
        builder.Services.AddSingleton(sp => new Ifcb.Data.Bins.BlobBinSetStore(sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(DatasetsContainer)));
        builder.Services.AddSingleton<RegistryCheckpoints>();
        builder.Services.AddSingleton<IWeightsStore>(sp => new BlobWeightsStore(sp.GetRequiredService<BlobServiceClient>()));
        builder.Services.AddSingleton<WorkerCache>();
        builder.Services.AddHostedService<ContainerInitializer>();

        // One job at a time per worker slot (configurable); a slot holds its message until the job ends.
        var slots = Math.Max(1, builder.Configuration.GetValue("Ifcb:TrainingSlots", 1));
        builder.AddIfcbMessaging("training", bus =>
        {
            bus.AddConsumer<TrainModelConsumer>().Endpoint(e =>
            {
                e.PrefetchCount = slots;
                e.ConcurrentMessageLimit = slots;
            });
            // RUN jobs share the worker slots' queue settings: one at a time per slot.
            bus.AddConsumer<RunModelConsumer>().Endpoint(e =>
            {
                e.PrefetchCount = slots;
                e.ConcurrentMessageLimit = slots;
            });
            bus.AddConsumer<ModelVersionRegisteredConsumer>();
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
}
