/// <summary>
/// RabbitMQ (Debian's rabbitmq-server) and Azurite (npm, pinned in the repo's package.json) as executable resources,
/// wrapped by the scripts in ./scripts, which bind to loopback only and clean up after themselves.
/// Every port is chosen by the orchestrator; the connection strings "messaging" and "blobs" point at them.
/// Set IFCB_STATE_DIR to keep the emulator's data between runs (the launch profile does).
/// </summary>
internal sealed class LocalInfrastructure(IDistributedApplicationBuilder builder)
{
    // Azurite's documented, public development account key.
    private const string AzuriteAccountKey =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private string Script(string name) => Path.Combine(builder.AppHostDirectory, "scripts", name);

    private string? StateDirectory
    {
        get
        {
            var configured = builder.Configuration["IFCB_STATE_DIR"];
            return string.IsNullOrWhiteSpace(configured) ? null : Path.GetFullPath(configured, builder.AppHostDirectory);
        }
    }

    public IResourceBuilder<IResourceWithConnectionString> AddRabbitMq(string name)
    {
        var rabbit = builder.AddExecutable(name, "/bin/bash", builder.AppHostDirectory, Script("rabbitmq.sh"))
            .WithEndpoint(name: "amqp", scheme: "tcp", env: "RABBITMQ_NODE_PORT")
            .WithHttpEndpoint(name: "management", env: "RABBITMQ_MANAGEMENT_PORT")
            .WithEndpoint(name: "epmd", scheme: "tcp", env: "ERL_EPMD_PORT", isProxied: false)
            .WithEndpoint(name: "dist", scheme: "tcp", env: "RABBITMQ_DIST_PORT", isProxied: false)
            .WithHttpHealthCheck("/", endpointName: "management")
            .WithUrlForEndpoint("management", url => url.DisplayText = "RabbitMQ management (guest/guest)")
            .WithUrlForEndpoint("amqp", url => url.DisplayLocation = UrlDisplayLocation.DetailsOnly)
            .WithUrlForEndpoint("epmd", url => url.DisplayLocation = UrlDisplayLocation.DetailsOnly)
            .WithUrlForEndpoint("dist", url => url.DisplayLocation = UrlDisplayLocation.DetailsOnly);
        WithState(rabbit);

        var amqp = rabbit.GetEndpoint("amqp");
        return builder.AddConnectionString("messaging",
                ReferenceExpression.Create($"amqp://guest:guest@127.0.0.1:{amqp.Property(EndpointProperty.Port)}"))
            .WaitFor(rabbit);
    }

    public IResourceBuilder<IResourceWithConnectionString> AddAzuriteBlobs(string name)
    {
        var azurite = builder.AddExecutable(name, "/bin/bash", builder.AppHostDirectory, Script("azurite.sh"))
            .WithHttpEndpoint(name: "blob", env: "AZURITE_BLOB_PORT")
            // Azurite answers an unauthenticated list request with 403 once it is up.
            .WithHttpHealthCheck("/devstoreaccount1?comp=list", statusCode: 403, endpointName: "blob")
            .WithUrlForEndpoint("blob", url => url.DisplayText = "Azurite blob endpoint (devstoreaccount1)");
        WithState(azurite);

        var blob = azurite.GetEndpoint("blob");
        return builder.AddConnectionString("blobs", ReferenceExpression.Create(
                $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AzuriteAccountKey};" +
                $"BlobEndpoint=http://127.0.0.1:{blob.Property(EndpointProperty.Port)}/devstoreaccount1;"))
            .WaitFor(azurite);
    }

    private void WithState(IResourceBuilder<ExecutableResource> resource)
    {
        if (StateDirectory is { } state)
            resource.WithEnvironment("IFCB_STATE_DIR", state);
    }
}
