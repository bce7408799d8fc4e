using System.Security.Cryptography;
using System.Text;

internal static class ServiceResources
{
    /// <summary>
    /// A platform service: an HTTP/1.1 endpoint for health probes and an HTTP/2 endpoint for gRPC (cleartext gRPC
    /// needs HTTP/2 prior knowledge), the bus, blob storage and the API key's SHA-256 (never the key: the dashboard
    /// displays every environment variable of a resource). The services speak plain HTTP on loopback, so they are
    /// given no HTTPS certificate; without that, Aspire would look for a trusted development certificate and greet
    /// every newcomer with a red "No trusted development certificate" notice on the dashboard.
    /// </summary>
    public static IResourceBuilder<ProjectResource> AddIfcbService<TProject>(this IDistributedApplicationBuilder builder,
        string name, IResourceBuilder<IResourceWithConnectionString> messaging, IResourceBuilder<IResourceWithConnectionString> blobs,
        IResourceBuilder<ParameterResource> apiKey) where TProject : IProjectMetadata, new()
    {
        var service = builder.AddProject<TProject>(name, launchProfileName: null)
            .WithHttpEndpoint(name: "http", env: "HTTP_PORT")
            // A fixed public gRPC port (Ifcb:GrpcPorts:{name}) lets scripts and the CLI find the service; tests leave it unset.
            .WithHttpEndpoint(port: int.TryParse(builder.Configuration[$"Ifcb:GrpcPorts:{name}"], out var port) ? port : null,
                name: "grpc", env: "GRPC_PORT")
            .WithHttpHealthCheck("/health", endpointName: "http")
            .WithReference(messaging).WaitFor(messaging)
            .WithReference(blobs).WaitFor(blobs)
            .WithEnvironment(async context => context.EnvironmentVariables["Ifcb__ApiKeySha256"] =
                ApiKeyDigest.Sha256Hex(await apiKey.Resource.GetValueAsync(context.CancellationToken)
                    ?? throw new InvalidOperationException("The 'api-key' parameter has no value.")));
#pragma warning disable ASPIRECERTIFICATES001 // Experimental in Aspire 13.x; the supported switch for a resource that serves no TLS.
        return service.WithoutHttpsCertificate();
#pragma warning restore ASPIRECERTIFICATES001
    }

    /// <summary>
    /// glibc malloc settings for a process that trains with libtorch: keep freed activation memory for the next step
    /// instead of unmapping it (2× faster epochs on the 2-core build machines). The values are
    /// <c>Ifcb.Models.NativeAllocator</c>'s (its MallocTuning.cs is compiled into the AppHost); the service reports
    /// "malloc: environment" in GetInfo when it was started with them. Only as environment variables can
    /// MALLOC_ARENA_MAX apply.
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithTensorFriendlyMalloc(this IResourceBuilder<ProjectResource> service)
    {
        foreach (var (name, value) in Ifcb.Models.MallocTuning.EnvironmentVariables)
            service.WithEnvironment(name, value);
        return service;
    }
}

/// <summary>
/// What the services are given instead of the API key: the lower-case hex SHA-256 of its UTF-8 bytes, the format
/// Ifcb.ServiceDefaults' ApiKeyVerifier reads from Ifcb:ApiKeySha256 (the end-to-end tests call with the key to prove
/// both sides agree).
/// </summary>
internal static class ApiKeyDigest
{
    public static string Sha256Hex(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));
}
