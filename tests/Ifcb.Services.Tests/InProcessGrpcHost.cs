using System.Net;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Ifcb.Services.Tests;

/// <summary>
/// A real Kestrel gRPC server on a loopback port with the platform's gRPC pipeline (<see cref="ApiKeyExtensions.AddIfcbGrpc"/>:
/// error mapping and the key check) and the given service classes mapped, but none of their dependencies: a call the
/// key check refuses never reaches the service, and one it lets through fails when the service cannot be created —
/// unless <c>services</c> registers what the services need.
/// </summary>
internal sealed class InProcessGrpcHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private InProcessGrpcHost(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
        Channel = GrpcChannel.ForAddress(address);
    }

    /// <summary>The server's http://127.0.0.1:PORT address.</summary>
    public Uri Address { get; }

    public GrpcChannel Channel { get; }

    public static async Task<InProcessGrpcHost> StartAsync(IEnumerable<Type> serviceTypes, IReadOnlyDictionary<string, string?> configuration,
        Action<IServiceCollection, IConfiguration>? services = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Configuration.AddInMemoryCollection(configuration);
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http2));
        builder.Services.AddIfcbGrpc(detailedErrors: false);
        builder.Services.AddGrpcHealthChecks();
        services?.Invoke(builder.Services, builder.Configuration);

        var app = builder.Build();
        var map = typeof(GrpcEndpointRouteBuilderExtensions).GetMethods()
            .Single(m => m.Name == nameof(GrpcEndpointRouteBuilderExtensions.MapGrpcService) && m.IsGenericMethodDefinition);
        foreach (var serviceType in serviceTypes)
            map.MakeGenericMethod(serviceType).Invoke(null, [app]);
        app.MapGrpcHealthChecksService();
        await app.StartAsync();

        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new InProcessGrpcHost(app, new Uri(address));
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
