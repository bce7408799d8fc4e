using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Grpc.Core;
using Grpc.Net.Client;
using Ifcb.Protos;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

/// <summary>
/// The real Ifcb.AppHost (RabbitMQ and Azurite as local executables, the three services, one Training worker) started
/// through Aspire.Hosting.Testing as the end-to-end tests start it: empty temporary state, ports Aspire picks. Every
/// service process gets <see cref="RunVariable"/> = <see cref="RunTag"/> in its environment, so the RSS sampler finds
/// this platform's processes and not another one running on the machine. Disposing it stops every process it started.
/// </summary>
internal sealed class BenchPlatform : IAsyncDisposable
{
    public const string ApiKey = "datasets-bench-api-key-0123456789abcdef";
    public const string RunVariable = "IFCB_DATASETS_BENCH_RUN";
    private static readonly string[] Services = ["training", "normstats", "registry"];
    private readonly DistributedApplication _app;
    private readonly GrpcChannel _training;
    private readonly GrpcChannel _normStats;

    private readonly string _cache;

    private BenchPlatform(DistributedApplication app, string runTag, string cache)
    {
        _app = app;
        RunTag = runTag;
        _cache = cache;
        _training = GrpcChannel.ForAddress(app.GetEndpoint("training", "grpc"));
        _normStats = GrpcChannel.ForAddress(app.GetEndpoint("normstats", "grpc"));
    }

    public string RunTag { get; }

    /// <summary>gRPC call metadata carrying the API key, for write RPCs.</summary>
    public static Metadata Auth => new() { { "x-api-key", ApiKey } };

    public Datasets.DatasetsClient Datasets => new(_training);

    public Training.TrainingClient Training => new(_training);

    public NormStats.NormStatsClient NormStats => new(_normStats);

    public async Task<string> BlobConnectionStringAsync(CancellationToken cancellationToken) =>
        await _app.GetConnectionStringAsync("blobs", cancellationToken)
        ?? throw new InvalidOperationException("The AppHost has no 'blobs' connection string.");

    public static async Task<BenchPlatform> StartAsync(int normStatsReplicas, CancellationToken cancellationToken)
    {
        using var startup = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        startup.CancelAfter(TimeSpan.FromMinutes(5));
        // As PlatformFixture: blank the launch profile's state directory and fixed ports so that nothing collides with
        // ./run.sh or a previous run.
        string[] args =
        [
            $"Parameters:api-key={ApiKey}", "IFCB_STATE_DIR=", "Ifcb:GrpcPorts:training=", "Ifcb:GrpcPorts:normstats=",
            "Ifcb:GrpcPorts:registry=", "Ifcb:TrainingReplicas=1", $"Ifcb:NormStatsReplicas={normStatsReplicas}",
        ];
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.Ifcb_AppHost>(args, startup.Token);
        // The benchmark's own lines stay readable: of the resources' output (logged as information for stdout, error for
        // stderr) only stderr, the AppHost's own at warning and above, and no failed health checks while services start.
        builder.Services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.Warning)
            .AddFilter("Ifcb.AppHost.Resources", LogLevel.Warning)
            .AddFilter("Aspire", LogLevel.Warning)
            .AddFilter("Microsoft.Extensions.Diagnostics.HealthChecks", LogLevel.None));
        var runTag = Guid.NewGuid().ToString("N");
        // Every platform starts with an empty worker shard cache, so that "cold" is cold (the default cache directory is
        // shared by every run on this machine, and the same synthetic images give the same shards).
        var cache = Path.Combine(Path.GetTempPath(), $"ifcb-datasets-bench-cache-{runTag}");
        foreach (var project in builder.Resources.OfType<ProjectResource>())
        {
            builder.CreateResourceBuilder(project).WithEnvironment(RunVariable, runTag)
                .WithEnvironment("Ifcb__CacheDirectory", cache);
        }
        var app = await builder.BuildAsync(startup.Token);
        try
        {
            await app.StartAsync(startup.Token);
            foreach (var service in Services)
                await app.ResourceNotifications.WaitForResourceHealthyAsync(service, startup.Token);
            return new BenchPlatform(app, runTag, cache);
        }
        catch
        {
            await StopAsync(app);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _training.Dispose();
        _normStats.Dispose();
        await StopAsync(_app);
        if (Directory.Exists(_cache))
            Directory.Delete(_cache, recursive: true);
    }

    private static async Task StopAsync(DistributedApplication app)
    {
        // Not the caller's token: a cancelled run (Ctrl-C) must still stop every process it started.
        try
        {
            await app.StopAsync(CancellationToken.None);
        }
        finally
        {
            await app.DisposeAsync();
        }
    }
}
