namespace Microsoft.Extensions.Hosting;

public static class RegistryServiceExtensions
{
    /// <summary>The Registry service's wiring: gRPC and the bus.</summary>
    public static WebApplicationBuilder AddIfcbRegistryServices(this WebApplicationBuilder builder)
    {
        builder.Services.AddGrpc(o => o.EnableDetailedErrors = builder.Environment.IsDevelopment());
        builder.AddIfcbMessaging("registry");
        return builder;
    }
}
