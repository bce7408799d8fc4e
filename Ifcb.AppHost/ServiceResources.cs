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
}
