using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// What every IFCB service host shares: telemetry, health, service discovery, resilience and the Kestrel layout
/// (an HTTP/1.1 port for health probes and an HTTP/2 port for gRPC, since cleartext gRPC needs HTTP/2 prior knowledge).
/// </summary>
public static class ServiceDefaultsExtensions
{
    private const string HealthEndpointPath = "/health";
    private const string AlivenessEndpointPath = "/alive";

    /// <summary>
    /// Registers telemetry, health checks, service discovery and HTTP resilience for a service named <paramref name="serviceName"/>.
    /// </summary>
    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder, string serviceName) where TBuilder : IHostApplicationBuilder
    {
        builder.Services.AddSingleton(new ServiceIdentity(serviceName));
        builder.ConfigureOpenTelemetry();
        builder.AddDefaultHealthChecks();
        builder.Services.AddServiceDiscovery();
        builder.Services.ConfigureHttpClientDefaults(http =>
        {
            http.AddStandardResilienceHandler();
            http.AddServiceDiscovery();
        });
        return builder;
    }

    /// <summary>
    /// Listens on HTTP_PORT (HTTP/1.1: health, metrics) and GRPC_PORT (HTTP/2: gRPC) when the AppHost assigns them;
    /// otherwise keeps ASP.NET Core's defaults with HTTP/1.1 and HTTP/2.
    /// </summary>
    public static WebApplicationBuilder UseIfcbKestrelLayout(this WebApplicationBuilder builder)
    {
        var httpPort = builder.Configuration.GetValue<int?>("HTTP_PORT");
        var grpcPort = builder.Configuration.GetValue<int?>("GRPC_PORT");
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            if (httpPort is { } http && grpcPort is { } grpc)
            {
                kestrel.ListenLocalhost(http, o => o.Protocols = HttpProtocols.Http1);
                kestrel.ListenLocalhost(grpc, o => o.Protocols = HttpProtocols.Http2);
            }
            else
            {
                kestrel.ConfigureEndpointDefaults(o => o.Protocols = HttpProtocols.Http1AndHttp2);
            }
        });
        return builder;
    }

    public static TBuilder ConfigureOpenTelemetry<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        // The Azure SDK only emits spans through ActivitySource when asked to.
        AppContext.SetSwitch("Azure.Experimental.EnableActivitySource", true);

        builder.Logging.AddOpenTelemetry(logging =>
        {
            logging.IncludeFormattedMessage = true;
            logging.IncludeScopes = true;
        });

        builder.Services.AddOpenTelemetry()
            .WithMetrics(metrics => metrics
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                .AddMeter("MassTransit")
                .AddMeter(IfcbTelemetry.MeterPrefix + "*"))
            .WithTracing(tracing => tracing
                .AddSource(builder.Environment.ApplicationName)
                .AddSource("MassTransit")
                .AddSource("Azure.*")
                .AddSource(IfcbTelemetry.ActivitySourcePrefix + "*")
                .AddAspNetCoreInstrumentation(o =>
                    // Health probes every few seconds would drown the traces that matter.
                    o.Filter = context => !context.Request.Path.StartsWithSegments(HealthEndpointPath)
                                          && !context.Request.Path.StartsWithSegments(AlivenessEndpointPath)
                                          && !context.Request.Path.StartsWithSegments("/grpc.health.v1.Health"))
                .AddGrpcClientInstrumentation()
                .AddHttpClientInstrumentation());

        // Export only when someone listens (the Aspire dashboard sets the endpoint); otherwise the exporter's final
        // flush holds shutdown for seconds.
        if (!string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
            builder.Services.AddOpenTelemetry().UseOtlpExporter();

        return builder;
    }

    public static TBuilder AddDefaultHealthChecks<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Services.AddHealthChecks()
            .AddCheck("self", () => HealthCheckResult.Healthy(), ["live"]);
        builder.Services.AddGrpcHealthChecks();
        return builder;
    }

    /// <summary>Maps /health (every check), /alive (liveness only) and the standard gRPC health service.</summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        app.MapHealthChecks(HealthEndpointPath);
        app.MapHealthChecks(AlivenessEndpointPath, new HealthCheckOptions { Predicate = r => r.Tags.Contains("live") });
        app.MapGrpcHealthChecksService();
        return app;
    }
}
