using Aspire.Hosting.ApplicationModel;

internal static class ServiceResources
{
    /// <summary>
    /// A platform service: an HTTP/1.1 endpoint for health probes and an HTTP/2 endpoint for gRPC (cleartext gRPC
    /// needs HTTP/2 prior knowledge), the bus, blob storage and the API key.
    /// </summary>
    public static IResourceBuilder<ProjectResource> AddIfcbService<TProject>(this IDistributedApplicationBuilder builder,
        string name, IResourceBuilder<IResourceWithConnectionString> messaging, IResourceBuilder<IResourceWithConnectionString> blobs,
        IResourceBuilder<ParameterResource> apiKey) where TProject : IProjectMetadata, new() =>
        builder.AddProject<TProject>(name, launchProfileName: null)
            .WithHttpEndpoint(name: "http", env: "HTTP_PORT")
            // A fixed public gRPC port (Ifcb:GrpcPorts:{name}) lets scripts and the CLI find the service; tests leave it unset.
            .WithHttpEndpoint(port: int.TryParse(builder.Configuration[$"Ifcb:GrpcPorts:{name}"], out var port) ? port : null,
                name: "grpc", env: "GRPC_PORT")
            .WithHttpHealthCheck("/health", endpointName: "http")
            .WithReference(messaging).WaitFor(messaging)
            .WithReference(blobs).WaitFor(blobs)
            .WithEnvironment("Ifcb__ApiKey", apiKey);

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
