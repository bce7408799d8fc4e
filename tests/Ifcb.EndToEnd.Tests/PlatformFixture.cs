using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Grpc.Net.Client;

namespace Ifcb.EndToEnd.Tests;

/// <summary>
/// One running platform per test collection: the real Ifcb.AppHost (RabbitMQ + Azurite as local executables, the
/// three services) started through Aspire.Hosting.Testing. Disposing it stops every process it started.
/// </summary>
public class PlatformFixture : IAsyncLifetime
{
    public const string ApiKey = "e2e-test-api-key-0123456789abcdef";
    private static readonly string[] Services = ["training", "normstats", "registry"];
    private readonly Dictionary<string, GrpcChannel> _channels = [];

    public DistributedApplication App { get; private set; } = null!;

    /// <summary>Two instances of each worker service, so tests can show competing consumers and survive a killed worker.</summary>
    protected virtual IEnumerable<string> AppHostArgs => ["Ifcb:TrainingReplicas=2", "Ifcb:NormStatsReplicas=2"];

    /// <summary>
    /// Environment for every service: the job kernel's timings shortened so that a lost worker is noticed in ~20 s
    /// instead of ~45 s (lease 15 s, heartbeat 3 s, reconciler sweep 3 s) and follow-ups happen within seconds; webhook
    /// retries after 200 ms instead of 10 s (swept every 200 ms), so a retried delivery settles within a second.
    /// </summary>
    protected virtual IReadOnlyDictionary<string, string> ServiceEnvironment => new Dictionary<string, string>
    {
        ["Ifcb__Jobs__LeaseDuration"] = "00:00:15",
        ["Ifcb__Jobs__HeartbeatInterval"] = "00:00:03",
        ["Ifcb__Jobs__ReconcileInterval"] = "00:00:03",
        ["Ifcb__Jobs__DispatchGrace"] = "00:00:05",
        ["Ifcb__Jobs__FollowUpAfter"] = "00:00:10",
        ["Ifcb__Jobs__SlotWait"] = "00:00:02",
        ["Ifcb__Webhooks__RetryBaseDelay"] = "00:00:00.2",
        ["Ifcb__Webhooks__RetryMaxDelay"] = "00:00:00.4",
        ["Ifcb__Webhooks__SweepInterval"] = "00:00:00.2",
        ["Ifcb__Webhooks__RequestTimeout"] = "00:00:20",
    };

    /// <summary>Every platform event published on the bus since start-up, as a test-side subscriber sees it.</summary>
    public BusEvents Events { get; private set; } = null!;

    /// <summary>Spans and metrics the services exported since start-up (the fixture's stand-in for the dashboard).</summary>
    public OtlpReceiver Telemetry { get; private set; } = null!;

    /// <summary>gRPC call metadata carrying the API key, for write RPCs.</summary>
    public static Grpc.Core.Metadata Auth => new() { { "x-api-key", ApiKey } };

    public virtual async Task InitializeAsync()
    {
        using var startup = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        // The AppHost's launch profile (which the testing builder applies) keeps data in .state/ and pins the gRPC ports
        // for ./run.sh; tests blank both so every run starts empty, in temporary directories, on ports Aspire picks.
        string[] isolation = ["IFCB_STATE_DIR=", "Ifcb:GrpcPorts:training=", "Ifcb:GrpcPorts:normstats=", "Ifcb:GrpcPorts:registry="];
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.Ifcb_AppHost>(
            [$"Parameters:api-key={ApiKey}", .. isolation, .. AppHostArgs], startup.Token);

        // The services export their telemetry to the test's OTLP receiver instead of a dashboard, quickly, so tests can
        // assert on traces and metrics.
        Telemetry = OtlpReceiver.Start();
        foreach (var project in builder.Resources.OfType<ProjectResource>())
            builder.CreateResourceBuilder(project).WithEnvironment(env =>
            {
                env.EnvironmentVariables["OTEL_EXPORTER_OTLP_ENDPOINT"] = Telemetry.Endpoint;
                env.EnvironmentVariables["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf";
                env.EnvironmentVariables["OTEL_BSP_SCHEDULE_DELAY"] = "500";
                env.EnvironmentVariables["OTEL_METRIC_EXPORT_INTERVAL"] = "1000";
                foreach (var (name, value) in ServiceEnvironment)
                    env.EnvironmentVariables[name] = value;
            });

        // The broker redelivers a message held unacknowledged for 15 s (checked about once a minute) instead of after
        // RabbitMQ's default 30 minutes: every training job longer than that proves jobs do not hold their message.
        foreach (var broker in builder.Resources.OfType<ExecutableResource>().Where(r => r.Name == "rabbitmq"))
            builder.CreateResourceBuilder(broker).WithEnvironment("IFCB_RABBITMQ_CONSUMER_TIMEOUT_MS", "15000");

        App = await builder.BuildAsync(startup.Token);
        await App.StartAsync(startup.Token);
        foreach (var service in Services)
            await App.ResourceNotifications.WaitForResourceHealthyAsync(service, startup.Token);
        foreach (var service in Services)
            if (App.GetEndpoint(service, "grpc").Port is 5101 or 5102 or 5103)
                throw new InvalidOperationException($"{service} got the launch profile's fixed port; the test platform must not collide with ./run.sh.");
        Events = await BusEvents.StartAsync(await App.GetConnectionStringAsync("messaging", startup.Token)
            ?? throw new InvalidOperationException("The AppHost has no 'messaging' connection string."));
    }

    /// <summary>A gRPC channel to a service's HTTP/2 endpoint.</summary>
    public GrpcChannel Channel(string service)
    {
        lock (_channels)
        {
            if (!_channels.TryGetValue(service, out var channel))
                _channels[service] = channel = GrpcChannel.ForAddress(App.GetEndpoint(service, "grpc"));
            return channel;
        }
    }

    public virtual async Task DisposeAsync()
    {
        foreach (var channel in _channels.Values)
            channel.Dispose();
        if (Events is not null)
            await Events.DisposeAsync();
        if (App is not null)
        {
            await App.StopAsync();
            await App.DisposeAsync();
        }
        if (Telemetry is not null)
            await Telemetry.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class PlatformCollection : ICollectionFixture<PlatformFixture>
{
    public const string Name = "platform";
}
