using Azure.Storage.Blobs;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Blob storage from the connection string "blobs" (Azurite locally, Azure Storage in production). This is our
/// replacement for Aspire.Azure.Storage.Blobs, which the package mirror does not serve.
/// </summary>
public static class BlobExtensions
{
    public const string ConnectionStringName = "blobs";

    public static TBuilder AddIfcbBlobs<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        var connectionString = builder.Configuration.GetConnectionString(ConnectionStringName)
            ?? throw new InvalidOperationException(
                $"Connection string '{ConnectionStringName}' is missing. Run the service under Ifcb.AppHost, or set " +
                $"ConnectionStrings__{ConnectionStringName} to an Azure Storage connection string.");

        builder.Services.AddSingleton(_ => new BlobServiceClient(connectionString, ClientOptions()));
        builder.Services.AddHealthChecks().AddCheck<BlobStorageHealthCheck>("blobs", tags: ["ready"]);
        return builder;
    }

    /// <summary>
    /// The options of every blob client a service creates: its own account's, and those it opens from another
    /// service's read grant (<see cref="Ifcb.Platform.Storage.BlobReadGrant"/>).
    /// </summary>
    public static BlobClientOptions ClientOptions() => new()
    {
        Retry = { MaxRetries = 5, Delay = TimeSpan.FromMilliseconds(200), Mode = global::Azure.Core.RetryMode.Exponential },
    };

    private sealed class BlobStorageHealthCheck(BlobServiceClient blobs) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            try
            {
                await foreach (var _ in blobs.GetBlobContainersAsync(cancellationToken: cancellationToken).AsPages(pageSizeHint: 1))
                    break;
                return HealthCheckResult.Healthy();
            }
            catch (Exception e) when (e is global::Azure.RequestFailedException or HttpRequestException or OperationCanceledException)
            {
                return HealthCheckResult.Unhealthy($"blob storage at {blobs.Uri} is unreachable", e);
            }
        }
    }
}
