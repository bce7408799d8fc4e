using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using Ifcb.Protos;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Ifcb.Cli.Tests;

/// <summary>What a scripted call does on its Nth arrival (1-based): return normally, throw an RpcException, or wait.</summary>
internal delegate Task CallScript(int call, ServerCallContext context);

/// <summary>
/// The platform's gRPC contracts (Training, NormStats, Registry) served by a real Kestrel on 127.0.0.1:0, over HTTP/2
/// like the services, with per-method scripts that make a call fail, hang or slow down, and a record of what arrived.
/// The answers are minimal but shaped like the real ones (the Registry numbers versions 1, 2, … and honours
/// idempotency keys; RegisterVersion follows the upload protocol's "ifcb-send-data" handshake).
/// </summary>
internal sealed class FakePlatform : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, int> _calls = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, CallScript> _scripts = new(StringComparer.Ordinal);

    private FakePlatform(WebApplication app) => _app = app;

    /// <summary>The address the CLI is given (--server, --registry-url …).</summary>
    public string Url { get; private set; } = "";

    /// <summary>Details Training's GetInfo reports; by default both peers are this server.</summary>
    public ConcurrentDictionary<string, string> TrainingDetails { get; } = new(StringComparer.Ordinal);

    /// <summary>Every RegisterVersion attempt's header, in arrival order, and the bytes that followed it.</summary>
    public ConcurrentQueue<(RegisterVersionHeader Header, byte[] Data)> Registrations { get; } = new();

    /// <summary>The Registry's versions by (name, number).</summary>
    public ConcurrentDictionary<(string Name, int Version), ModelVersion> Versions { get; } = new();

    /// <summary>Every SearchVersions request received, in order.</summary>
    public ConcurrentQueue<SearchVersionsRequest> Searches { get; } = new();

    /// <summary>Every UpdateVersion request received, in order.</summary>
    public ConcurrentQueue<UpdateVersionRequest> Updates { get; } = new();

    /// <summary>Every CreateWebhook request received, in order.</summary>
    public ConcurrentQueue<CreateWebhookRequest> WebhookCreations { get; } = new();

    /// <summary>The most versions one SearchVersions page holds (whatever the page size asked for).</summary>
    public int SearchPageLimit { get; set; } = int.MaxValue;

    /// <summary>What DownloadCheckpoint serves for any version.</summary>
    public byte[] CheckpointBytes { get; set; } = [];

    /// <summary>The job states WatchJob streams; GetJob answers the first, then the last.</summary>
    public List<TrainingJob> JobUpdates { get; } = [];

    public static async Task<FakePlatform> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
            kestrel.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        FakePlatform? platform = null;
        builder.Services.AddSingleton(_ => platform!);
        var app = builder.Build();
        platform = new FakePlatform(app);
        app.MapGrpcService<FakeTraining>();
        app.MapGrpcService<FakeNormStats>();
        app.MapGrpcService<FakeRegistry>();
        await app.StartAsync();
        platform.Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        platform.TrainingDetails["registry_url"] = platform.Url;
        platform.TrainingDetails["normstats_url"] = platform.Url;
        return platform;
    }

    /// <summary>Scripts a method, named "Service.Method" (e.g. "Registry.SearchVersions").</summary>
    public void On(string method, CallScript script) => _scripts[method] = script;

    /// <summary>How many times a method was called (every attempt counts).</summary>
    public int Calls(string method) => _calls.TryGetValue(method, out var count) ? count : 0;

    /// <summary>The first <paramref name="times"/> calls fail with <paramref name="code"/>; later ones succeed.</summary>
    public static CallScript FailFirst(int times, StatusCode code, string detail = "") =>
        (call, _) => call <= times ? throw new RpcException(new Status(code, detail)) : Task.CompletedTask;

    /// <summary>Every call fails with <paramref name="code"/>.</summary>
    public static CallScript AlwaysFail(StatusCode code, string detail = "") => (_, _) => throw new RpcException(new Status(code, detail));

    internal async Task EnterAsync(string method, ServerCallContext context)
    {
        var call = _calls.AddOrUpdate(method, 1, (_, count) => count + 1);
        if (_scripts.TryGetValue(method, out var script))
            await script(call, context);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    /// <summary>A loopback port with nothing listening: connecting is refused at once.</summary>
    public static string DeadUrl()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return $"http://127.0.0.1:{port}";
    }

    private static ServiceInfo Info(string service, IDictionary<string, string>? details = null)
    {
        var info = new ServiceInfo { Service = service, Version = "test", InstanceId = service + "-1", Machine = "localhost", StartedAt = "2025-01-01T00:00:00Z" };
        if (details is not null)
            info.Details.Add(details);
        return info;
    }

    private sealed class FakeTraining(FakePlatform platform) : Ifcb.Protos.Training.TrainingBase
    {
        public override async Task<ServiceInfo> GetInfo(GetInfoRequest request, ServerCallContext context)
        {
            await platform.EnterAsync("Training.GetInfo", context);
            return Info("training", platform.TrainingDetails);
        }

        public override async Task<ListJobsReply> ListJobs(ListJobsRequest request, ServerCallContext context)
        {
            await platform.EnterAsync("Training.ListJobs", context);
            return new ListJobsReply { Jobs = { new TrainingJob { JobId = "job-1", State = JobState.Succeeded, Request = new StartTrainingRequest { TrainId = "t1" } } } };
        }

        public override async Task<TrainingJob> GetJob(JobRef request, ServerCallContext context)
        {
            await platform.EnterAsync("Training.GetJob", context);
            if (platform.JobUpdates.Count == 0)
                throw new RpcException(new Status(StatusCode.NotFound, $"No job {request.JobId}."));
            // The first look finds the job as it started; later ones find it as it ended.
            return platform.Calls("Training.GetJob") == 1 ? platform.JobUpdates[0] : platform.JobUpdates[^1];
        }

        public override async Task WatchJob(JobRef request, IServerStreamWriter<TrainingJob> responseStream, ServerCallContext context)
        {
            // The script runs after the first update, so it can break a watch that has already delivered something.
            var first = true;
            foreach (var update in platform.JobUpdates)
            {
                await responseStream.WriteAsync(update);
                if (first)
                    await platform.EnterAsync("Training.WatchJob", context);
                first = false;
            }
        }

        public override async Task<TrainingJob> CancelJob(JobRef request, ServerCallContext context)
        {
            await platform.EnterAsync("Training.CancelJob", context);
            return new TrainingJob { JobId = request.JobId, State = JobState.Cancelled };
        }
    }

    private sealed class FakeNormStats(FakePlatform platform) : Ifcb.Protos.NormStats.NormStatsBase
    {
        public override async Task<ServiceInfo> GetInfo(GetInfoRequest request, ServerCallContext context)
        {
            await platform.EnterAsync("NormStats.GetInfo", context);
            return Info("normstats");
        }
    }

    private sealed class FakeRegistry(FakePlatform platform) : Registry.RegistryBase
    {
        private static readonly Lock Allocation = new();

        public override async Task<ServiceInfo> GetInfo(GetInfoRequest request, ServerCallContext context)
        {
            await platform.EnterAsync("Registry.GetInfo", context);
            return Info("registry");
        }

        public override async Task<SearchVersionsReply> SearchVersions(SearchVersionsRequest request, ServerCallContext context)
        {
            await platform.EnterAsync("Registry.SearchVersions", context);
            platform.Searches.Enqueue(request.Clone());
            // Offset page tokens, at most SearchPageLimit per page: enough to show that clients follow next_page_token.
            var all = platform.Versions.Values.OrderBy(v => v.Name, StringComparer.Ordinal).ThenBy(v => v.Version).ToList();
            var offset = request.PageToken.Length == 0 ? 0 : int.Parse(request.PageToken, System.Globalization.CultureInfo.InvariantCulture);
            var size = Math.Min(request.PageSize == 0 ? 100 : request.PageSize, platform.SearchPageLimit);
            var reply = new SearchVersionsReply { Versions = { all.Skip(offset).Take(size) } };
            if (offset + size < all.Count)
                reply.NextPageToken = (offset + size).ToString(System.Globalization.CultureInfo.InvariantCulture);
            return reply;
        }

        public override async Task<ModelVersion> UpdateVersion(UpdateVersionRequest request, ServerCallContext context)
        {
            await platform.EnterAsync("Registry.UpdateVersion", context);
            platform.Updates.Enqueue(request.Clone());
            return new ModelVersion { Name = request.Name, Version = request.Version, UpdatedAt = "2025-01-01T00:00:00Z" };
        }

        public override async Task<Webhook> CreateWebhook(CreateWebhookRequest request, ServerCallContext context)
        {
            await platform.EnterAsync("Registry.CreateWebhook", context);
            platform.WebhookCreations.Enqueue(request.Clone());
            return new Webhook { Id = "0123456789abcdef", Url = request.Url, Model = request.Model, Events = { request.Events }, SecretSet = true };
        }

        public override async Task<SearchModelsReply> SearchModels(SearchModelsRequest request, ServerCallContext context)
        {
            await platform.EnterAsync("Registry.SearchModels", context);
            var names = platform.Versions.Keys.Select(k => k.Name).Distinct().Order(StringComparer.Ordinal);
            return new SearchModelsReply { Models = { names.Select(name => new RegisteredModel { Name = name, Tags = { ["filter"] = request.Filter } }) } };
        }

        public override async Task<ModelVersion> GetVersion(VersionRef request, ServerCallContext context)
        {
            await platform.EnterAsync("Registry.GetVersion", context);
            return platform.Versions.TryGetValue((request.Name, request.Version), out var version)
                ? version
                : throw new RpcException(new Status(StatusCode.NotFound, $"No version {request.Name}/{request.Version}."));
        }

        public override async Task<RegisteredModel> SetAlias(SetAliasRequest request, ServerCallContext context)
        {
            await platform.EnterAsync("Registry.SetAlias", context);
            return new RegisteredModel { Name = request.Name, Aliases = { [request.Alias] = request.Version } };
        }

        public override async Task DownloadCheckpoint(VersionRef request, IServerStreamWriter<DataChunk> responseStream, ServerCallContext context)
        {
            var bytes = platform.CheckpointBytes;
            const int chunk = 64 * 1024;
            for (var offset = 0; offset < bytes.Length; offset += chunk)
            {
                var first = offset == 0;
                var last = offset + chunk >= bytes.Length;
                await responseStream.WriteAsync(new DataChunk
                {
                    Data = ByteString.CopyFrom(bytes, offset, Math.Min(chunk, bytes.Length - offset)),
                    TotalSize = first ? bytes.Length : 0,
                    Sha256 = last ? Convert.ToHexStringLower(SHA256.HashData(bytes)) : "",
                });
                // Scripted after the first chunk, so a failure breaks a download that is under way.
                if (first)
                    await platform.EnterAsync("Registry.DownloadCheckpoint", context);
            }
        }

        public override async Task<ModelVersion> RegisterVersion(IAsyncStreamReader<RegisterVersionChunk> requestStream, ServerCallContext context)
        {
            if (!await requestStream.MoveNext() || requestStream.Current.PartCase != RegisterVersionChunk.PartOneofCase.Header)
                throw new RpcException(new Status(StatusCode.InvalidArgument, "The first message must be the header."));
            var header = requestStream.Current.Header;
            await context.WriteResponseHeadersAsync(new Metadata { { UploadProtocol.SendDataHeader, "1" } });
            using var data = new MemoryStream();
            while (await requestStream.MoveNext())
                data.Write(requestStream.Current.Data.Span);
            var bytes = data.ToArray();
            platform.Registrations.Enqueue((header, bytes));
            // Like the real registry: every declared byte is read before it answers, also when the answer is a failure.
            await platform.EnterAsync("Registry.RegisterVersion", context);
            if (bytes.Length != header.Size || Convert.ToHexStringLower(SHA256.HashData(bytes)) != header.Sha256)
                throw new RpcException(new Status(StatusCode.DataLoss, "The bytes do not match the declared size and SHA-256."));
            lock (Allocation)
            {
                if (header.IdempotencyKey.Length > 0 && platform.Versions.Values.FirstOrDefault(v => v.Name == header.Name && v.IdempotencyKey == header.IdempotencyKey) is { } existing)
                    return existing;
                var number = platform.Versions.Keys.Where(k => k.Name == header.Name).Select(k => k.Version).DefaultIfEmpty(0).Max() + 1;
                var version = new ModelVersion
                {
                    Name = header.Name, Version = number, Status = VersionStatus.Ready, Metadata = header.Metadata, CheckpointSha256 = header.Sha256,
                    CheckpointSize = header.Size, IdempotencyKey = header.IdempotencyKey, CreatedAt = "2025-01-01T00:00:00Z", CreatedBy = "test",
                };
                platform.Versions[(header.Name, number)] = version;
                return version;
            }
        }
    }
}

/// <summary>
/// A TCP relay in front of a server that can be frozen: the connections it carries then stay open but nothing passes
/// either way, like a server whose host died or a network that silently drops packets. New connections still pass.
/// </summary>
internal sealed class FreezableRelay : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<CancellationTokenSource> _frozen = [];
    private readonly List<TcpClient> _sockets = [];
    private readonly Lock _gate = new();

    public FreezableRelay(string target)
    {
        var uri = new Uri(target);
        _listener.Start();
        Url = $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";
        _ = AcceptAsync(uri.Host, uri.Port);
    }

    public string Url { get; }

    /// <summary>Stops relaying on every connection open now, leaving them open.</summary>
    public void FreezeOpenConnections()
    {
        lock (_gate)
        {
            foreach (var freeze in _frozen)
                freeze.Cancel();
        }
    }

    private async Task AcceptAsync(string host, int port)
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (SocketException)
            {
                return;
            }
            var server = new TcpClient();
            await server.ConnectAsync(host, port);
            var freeze = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            lock (_gate)
            {
                _frozen.Add(freeze);
                _sockets.Add(client);
                _sockets.Add(server);
            }
            _ = PumpAsync(client, server, freeze.Token);
            _ = PumpAsync(server, client, freeze.Token);
        }
    }

    private static async Task PumpAsync(TcpClient from, TcpClient to, CancellationToken freeze)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await from.GetStream().ReadAsync(buffer, freeze)) > 0)
                await to.GetStream().WriteAsync(buffer.AsMemory(0, read), freeze);
            to.Client.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
            // Frozen (the sockets stay open and silent until the relay is disposed) or closed.
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        lock (_gate)
        {
            // Closing the frozen connections lets the server see the end of the calls it was still serving.
            foreach (var socket in _sockets)
                socket.Dispose();
        }
    }
}
