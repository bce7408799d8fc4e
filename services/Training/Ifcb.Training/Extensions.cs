namespace Microsoft.Extensions.Hosting;

public static class TrainingServiceExtensions
{
    /// <summary>The Training service's wiring: gRPC and the bus.</summary>
    public static WebApplicationBuilder AddIfcbTrainingServices(this WebApplicationBuilder builder)
    {
        builder.Services.AddGrpc(o => o.EnableDetailedErrors = builder.Environment.IsDevelopment());
        builder.AddIfcbMessaging("training");
        return builder;
    }
}
