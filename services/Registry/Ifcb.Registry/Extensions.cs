using Azure.Storage;
using Azure.Storage.Blobs;
using Ifcb.Registry;
using Ifcb.Registry.Engine;

namespace Microsoft.Extensions.Hosting;

public static class RegistryServiceExtensions
{
    /// <summary>The blob container that holds the whole registry (models, versions, checkpoints, audit log, API keys).</summary>
    public const string ContainerName = "registry";

    /// <summary>When true, the Registry's [ReadOnlyRpc] methods need a key of any role too (default false).</summary>
    public const string RequireKeyForReadsKey = RegistryLimits.Section + ":RequireKeyForReads";

    private const int UploadBlockBytes = 4 * 1024 * 1024;

    /// <summary>
    /// The Registry service's wiring: the engine over blob storage, gRPC (errors mapped by the platform's interceptor), the bus.
    /// </summary>
    public static WebApplicationBuilder AddIfcbRegistryServices(this WebApplicationBuilder builder)
    {
        builder.Services.AddRegistryEngine(builder.Configuration,
            sp => sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(ContainerName));
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

    /// <summary>
    /// The engine parts the gRPC service adapts, all over the registry's <paramref name="container"/>: the registry with
    /// the configured limits (<see cref="RegistryLimits"/>), exports, lineage, evaluations and the named API keys.
    /// </summary>
    public static IServiceCollection AddRegistryEngine(this IServiceCollection services, IConfiguration configuration,
        Func<IServiceProvider, BlobContainerClient> container)
    {
        var limits = RegistryLimits.From(configuration);
        services.AddSingleton(limits);
        services.AddSingleton(sp => new ModelRegistry(
            container(sp),
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
        services.AddSingleton(sp => new VersionExports(container(sp), sp.GetRequiredService<ModelRegistry>(),
            OnnxVersionExporter.Export, OnnxVersionExporter.Version));
        services.AddSingleton(sp => new VersionLineage(container(sp), sp.GetRequiredService<ModelRegistry>()));
        services.AddSingleton(sp => new VersionEvaluations(container(sp), sp.GetRequiredService<ModelRegistry>()));
        services.AddSingleton(WebhookSettings.From(configuration));
        services.AddSingleton(sp => new RegistryWebhooks(container(sp), sp.GetRequiredService<WebhookOptions>()));
        services.AddSingleton(sp => new WebhookSender(sp.GetRequiredService<WebhookOptions>()));
        return services.AddRegistryApiKeys(configuration, container);
    }

    /// <summary>
    /// Named API keys (<see cref="ApiKeys"/>, in <paramref name="container"/>) accepted by the key check besides the
    /// bootstrap key, and <see cref="RequireKeyForReadsKey"/>.
    /// </summary>
    private static IServiceCollection AddRegistryApiKeys(this IServiceCollection services, IConfiguration configuration,
        Func<IServiceProvider, BlobContainerClient> container)
    {
        services.AddSingleton(sp => new ApiKeys(container(sp)));
        return services.AddNamedApiKeys(sp => new RegistryKeyResolver(sp.GetRequiredService<ApiKeys>()),
            configuration.GetValue(RequireKeyForReadsKey, false));
    }

    /// <summary>Creates the registry's container once at start-up.</summary>
    private sealed class ContainerInitializer(BlobServiceClient blobs) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) =>
            blobs.GetBlobContainerClient(ContainerName).CreateIfNotExistsAsync(cancellationToken: cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
