namespace Microsoft.Extensions.Hosting;

public static class NormStatsServiceExtensions
{
    /// <summary>The NormStats service's wiring: gRPC and the bus.</summary>
    public static WebApplicationBuilder AddIfcbNormStatsServices(this WebApplicationBuilder builder)
    {
        builder.Services.AddGrpc(o => o.EnableDetailedErrors = builder.Environment.IsDevelopment());
        builder.AddIfcbMessaging("normstats");
        return builder;
    }
}
