using Azure.Storage;
using Azure.Storage.Blobs;
using Ifcb.Registry;
using Ifcb.Registry.Engine;

namespace Microsoft.Extensions.Hosting;

public static class RegistryServiceExtensions
{
    /// <summary>The blob container that holds the whole registry (models, versions, checkpoints, audit log).</summary>
    public const string ContainerName = "registry";

    private const int UploadBlockBytes = 4 * 1024 * 1024;

    /// <summary>
    /// The Registry service's wiring: the engine over blob storage, gRPC (errors mapped by the platform's interceptor), the bus.
    /// </summary>
    public static WebApplicationBuilder AddIfcbRegistryServices(this WebApplicationBuilder builder)
    {
        var limits = RegistryLimits.From(builder.Configuration);
        builder.Services.AddSingleton(limits);
        builder.Services.AddSingleton(sp => new ModelRegistry(
            sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(ContainerName),
            new RegistryOptions
            {
                MaxCheckpointBytes = limits.MaxCheckpointBytes,
                UploadTimeout = limits.UploadTimeout,
                PendingTimeout = limits.PendingTimeout,
                // Uploads arrive as a non-seekable stream; the SDK's default would buffer up to 256 MiB of it before the
                // first block. Small blocks bound the memory of an upload to a few blocks, whatever the checkpoint size.
                UploadTransferOptions = new StorageTransferOptions
                {
                    InitialTransferSize = UploadBlockBytes, MaximumTransferSize = UploadBlockBytes, MaximumConcurrency = 4,
                },
            }));
        builder.Services.AddSingleton(sp => new VersionExports(
            sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(ContainerName), sp.GetRequiredService<ModelRegistry>(),
            OnnxVersionExporter.Export, OnnxVersionExporter.Version));
        builder.Services.AddSingleton(sp => new VersionLineage(
            sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(ContainerName), sp.GetRequiredService<ModelRegistry>()));
        builder.Services.AddSingleton(sp => new VersionEvaluations(
            sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(ContainerName), sp.GetRequiredService<ModelRegistry>()));
        builder.Services.AddSingleton(WebhookSettings.From(builder.Configuration));
        builder.Services.AddSingleton(sp => new RegistryWebhooks(
            sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(ContainerName), sp.GetRequiredService<WebhookOptions>()));
        builder.Services.AddSingleton(sp => new WebhookSender(sp.GetRequiredService<WebhookOptions>()));
        builder.Services.AddScoped<RegistryEvents>();
        builder.Services.AddHostedService<ContainerInitializer>();
        // After the container initializer: hosted services start in registration order.
        builder.Services.AddHostedService<PendingVersionSweeper>();
        builder.Services.AddHostedService<WebhookSweeper>();

        // AddIfcbGrpc registers the platform's ErrorInterceptor, which maps the engine's IfcbException kinds 1:1.
        builder.Services.AddIfcbGrpc(detailedErrors: builder.Environment.IsDevelopment());
        builder.AddIfcbMessaging("registry", bus =>
        {
            bus.AddConsumer<ModelTrainedConsumer>();
            bus.AddConsumer<ModelEvaluatedConsumer>();
            bus.AddConsumer<ModelVersionUsedConsumer>();
            bus.AddConsumer<WebhookEventsConsumer>();
            bus.AddConsumer<DeliverWebhookConsumer>(typeof(DeliverWebhookConsumerDefinition));
        });
        return builder;
    }

    /// <summary>Creates the registry's container once at start-up.</summary>
    private sealed class ContainerInitializer(BlobServiceClient blobs) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) =>
            blobs.GetBlobContainerClient(ContainerName).CreateIfNotExistsAsync(cancellationToken: cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
