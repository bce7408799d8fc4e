using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Grpc.Core;
using Ifcb.Client;
using Ifcb.Models;
using Ifcb.Models.Checkpoints;
using Ifcb.Protos;
using Xunit.Abstractions;

namespace Ifcb.EndToEnd.Tests;

/// <summary>
/// Registry webhooks under the real AppHost, against a real HTTP listener in the test: deliveries are signed with the
/// shared secret, retried until a 2xx (each attempt recorded), and a listener that never answers does not slow the RPCs
/// whose events it receives. The fixture shortens the retry delay to 200 ms and sets a 20 s request timeout.
/// </summary>
[Collection(PlatformCollection.Name)]
public sealed class WebhookTests(PlatformFixture platform, ITestOutputHelper output) : IDisposable
{
    private const string Secret = "e2e-webhook-secret-0123456789";
    private static readonly Lazy<byte[]> CheckpointBytes = new(SaveUntrainedSqueezeNet);
    private readonly WebhookListener _listener = WebhookListener.Start();

    private Ifcb.Protos.Registry.RegistryClient Registry => new(platform.Channel("registry"));

    private static string UniqueName(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";

    private static byte[] SaveUntrainedSqueezeNet()
    {
        using var model = ModelZoo.Create("squeezenet1_1", 2, false);
        var hparams = new ModelHparams("squeezenet1_1", ["Mesodinium_major", "Strombidium-like"], 32, null, false, 1, "hook-model", "ci", null,
            DateTimeOffset.UtcNow, "e2e");
        using var stream = new MemoryStream();
        Ifcb.Models.Checkpoints.Checkpoint.Save(stream, hparams, model);
        return stream.ToArray();
    }

    private Task<Ifcb.Protos.ModelVersion> RegisterAsync(string name) =>
        RegistryUpload.RegisterCheckpointAsync(Registry, new RegisterVersionHeader
        {
            Name = name,
            Metadata = new VersionMetadata { Arch = "squeezenet1_1", Classes = { "Mesodinium_major", "Strombidium-like" }, Resize = 32 },
        }, new MemoryStream(CheckpointBytes.Value), PlatformFixture.Auth);

    private async Task<Webhook> CreateAsync(string path, string? model, params string[] events)
    {
        var request = new CreateWebhookRequest { Url = _listener.Url + path, Model = model ?? "", Secret = Secret };
        request.Events.Add(events);
        return await Registry.CreateWebhookAsync(request, PlatformFixture.Auth);
    }

    /// <summary>Polls the webhook's deliveries until one matches (the sweep and retries run every 200 ms here).</summary>
    private async Task<Ifcb.Protos.WebhookDelivery> WaitForDeliveryAsync(string webhookId, Func<Ifcb.Protos.WebhookDelivery, bool> match,
        TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var page = await Registry.ListWebhookDeliveriesAsync(new ListWebhookDeliveriesRequest { Id = webhookId }, PlatformFixture.Auth);
            if (page.Deliveries.FirstOrDefault(match) is { } found)
                return found;
            if (watch.Elapsed > timeout)
                throw new TimeoutException($"No matching delivery of webhook {webhookId} within {timeout}; it has: {page.Deliveries}");
            await Task.Delay(200);
        }
    }

    /// <summary>The receiver's side of the signature, computed here from the shared secret (not with the product's code).</summary>
    private static bool SignatureHolds(ReceivedRequest request)
    {
        var timestamp = request.Headers["X-Ifcb-Timestamp"]!;
        var signed = Encoding.UTF8.GetBytes(timestamp + ".").Concat(request.Body).ToArray();
        var expected = "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(Secret), signed));
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected),
            Encoding.ASCII.GetBytes(request.Headers["X-Ifcb-Signature"] ?? ""));
    }

    [Fact]
    public async Task A_registration_and_a_tag_change_are_posted_signed_with_the_shared_secret_and_the_secret_is_never_returned()
    {
        var name = UniqueName("hooked");
        var hook = await CreateAsync("signed/", name, "version.registered", "tag.set");
        Assert.True(hook.SecretSet);
        Assert.Equal(name, hook.Model);

        var version = await RegisterAsync(name);
        await Registry.SetVersionTagAsync(new SetTagRequest { Name = name, Version = version.Version, Key = "stage", Value = "prod" },
            PlatformFixture.Auth);
        // Events the webhook did not ask for are not sent: setting an alias is not in its filter.
        await Registry.SetAliasAsync(new SetAliasRequest { Name = name, Alias = "production", Version = version.Version }, PlatformFixture.Auth);

        var registered = await _listener.WaitForAsync(r => r.Path.StartsWith("/signed/", StringComparison.Ordinal)
            && r.Headers["X-Ifcb-Event"] == "version.registered", TimeSpan.FromSeconds(60));
        var tagged = await _listener.WaitForAsync(r => r.Path.StartsWith("/signed/", StringComparison.Ordinal)
            && r.Headers["X-Ifcb-Event"] == "tag.set", TimeSpan.FromSeconds(60));

        Assert.True(SignatureHolds(registered), "the registration's signature does not verify with the shared secret");
        Assert.True(SignatureHolds(tagged), "the tag change's signature does not verify with the shared secret");
        Assert.InRange(DateTimeOffset.UtcNow.ToUnixTimeSeconds() -
            long.Parse(registered.Headers["X-Ifcb-Timestamp"]!, CultureInfo.InvariantCulture), 0, 120);
        using (var body = JsonDocument.Parse(registered.Body))
        {
            var root = body.RootElement;
            Assert.Equal(("version.registered", name, version.Version, version.CheckpointSha256, "bootstrap", registered.Headers["X-Ifcb-Delivery"]),
                (root.GetProperty("event").GetString(), root.GetProperty("model").GetString(), root.GetProperty("version").GetInt32(),
                 root.GetProperty("sha256").GetString(), root.GetProperty("actor").GetString(), root.GetProperty("delivery_id").GetString()));
        }
        using (var body = JsonDocument.Parse(tagged.Body))
            Assert.Equal(("stage", "prod"), (body.RootElement.GetProperty("tag_key").GetString(), body.RootElement.GetProperty("tag_value").GetString()));

        var delivered = await WaitForDeliveryAsync(hook.Id, d => d.Event == "version.registered" && d.Status == WebhookDeliveryStatus.Delivered,
            TimeSpan.FromSeconds(30));
        Assert.Equal((1, 200), (delivered.Attempts, delivered.LastStatusCode));
        Assert.DoesNotContain(_listener.Received, r => r.Path.StartsWith("/signed/", StringComparison.Ordinal)
            && r.Headers["X-Ifcb-Event"] is "alias.set");

        var listed = (await Registry.ListWebhooksAsync(new ListWebhooksRequest(), PlatformFixture.Auth)).Webhooks.Single(w => w.Id == hook.Id);
        Assert.True(listed.SecretSet);
        Assert.DoesNotContain(Secret, listed.ToString(), StringComparison.Ordinal);
        await Registry.DeleteWebhookAsync(new WebhookRef { Id = hook.Id }, PlatformFixture.Auth);
        var gone = await Assert.ThrowsAsync<RpcException>(async () =>
            await Registry.ListWebhookDeliveriesAsync(new ListWebhookDeliveriesRequest { Id = hook.Id }, PlatformFixture.Auth));
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
    }

    [Fact]
    public async Task A_ping_to_a_listener_that_fails_twice_then_succeeds_is_delivered_on_the_third_attempt()
    {
        var hook = await CreateAsync("flaky/", UniqueName("flaky"));
        _listener.FailFirst("/flaky/", 2);

        var ping = await Registry.TestWebhookAsync(new WebhookRef { Id = hook.Id }, PlatformFixture.Auth);
        Assert.Equal(("ping", WebhookDeliveryStatus.Pending, 0), (ping.Event, ping.Status, ping.Attempts));

        var watch = Stopwatch.StartNew();
        var delivered = await WaitForDeliveryAsync(hook.Id, d => d.Id == ping.Id && d.Status != WebhookDeliveryStatus.Pending,
            TimeSpan.FromSeconds(60));
        output.WriteLine($"Ping delivered on attempt {delivered.Attempts} {watch.ElapsedMilliseconds} ms after TestWebhook returned");
        Assert.Equal((WebhookDeliveryStatus.Delivered, 3, 200, ""), (delivered.Status, delivered.Attempts, delivered.LastStatusCode, delivered.LastError));
        Assert.NotEmpty(delivered.DeliveredAt);
        var attempts = _listener.Received.Where(r => r.Path.StartsWith("/flaky/", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, attempts.Count);
        Assert.All(attempts, a => Assert.Equal(ping.Id, a.Headers["X-Ifcb-Delivery"]));
        Assert.All(attempts, a => Assert.Equal("ping", a.Headers["X-Ifcb-Event"]));
        Assert.All(attempts, a => Assert.True(SignatureHolds(a)));
        Assert.Single(attempts.Select(a => Encoding.UTF8.GetString(a.Body)).Distinct());

        await Registry.DeleteWebhookAsync(new WebhookRef { Id = hook.Id }, PlatformFixture.Auth);
    }

    [Fact]
    public async Task A_listener_that_never_answers_does_not_delay_RegisterVersion()
    {
        var name = UniqueName("silent");
        // Baseline without any webhook, then the same registration while every event of the model goes to a listener that
        // takes the request and never answers (the registry waits 20 s, its request timeout here, for each attempt).
        var watch = Stopwatch.StartNew();
        await RegisterAsync(name);
        var baseline = watch.Elapsed;
        var hook = await CreateAsync("silent/", name);

        watch.Restart();
        await RegisterAsync(name);
        await Registry.SetModelTagAsync(new SetTagRequest { Name = name, Key = "owner", Value = "e2e" }, PlatformFixture.Auth);
        var withSilentHook = watch.Elapsed;
        var held = await _listener.WaitForAsync(r => r.Path.StartsWith("/silent/", StringComparison.Ordinal)
            && r.Headers["X-Ifcb-Event"] == "version.registered", TimeSpan.FromSeconds(60));
        watch.Restart();
        await RegisterAsync(name);
        var whileHeld = watch.Elapsed;

        Assert.True(SignatureHolds(held));
        output.WriteLine($"RegisterVersion: {baseline.TotalMilliseconds:0} ms without a webhook (first, creates the model), " +
            $"{withSilentHook.TotalMilliseconds:0} ms (+ SetModelTag) with a silent one, {whileHeld.TotalMilliseconds:0} ms while it held a request");
        // Had an RPC waited for the endpoint it would have taken at least the 20 s request timeout; a registration of this
        // 3 MB checkpoint takes well under a second here, so 10 s leaves room for a loaded machine and still tells.
        Assert.True(withSilentHook < TimeSpan.FromSeconds(10) && whileHeld < TimeSpan.FromSeconds(10),
            $"RegisterVersion (+ SetModelTag) took {withSilentHook.TotalSeconds:0.0} s, then {whileHeld.TotalSeconds:0.0} s with a " +
            $"silent webhook (baseline without one {baseline.TotalSeconds:0.0} s): an RPC waited for the webhook.");
        var pending = await WaitForDeliveryAsync(hook.Id, d => d.Event == "version.registered", TimeSpan.FromSeconds(10));
        Assert.Equal(WebhookDeliveryStatus.Pending, pending.Status);

        await Registry.DeleteWebhookAsync(new WebhookRef { Id = hook.Id }, PlatformFixture.Auth);
    }

    [Fact]
    public async Task An_upload_that_does_not_match_its_sha256_is_announced_as_version_failed()
    {
        var name = UniqueName("failing");
        var hook = await CreateAsync("failed/", name, "version.failed");
        var bytes = CheckpointBytes.Value;

        var refused = await Assert.ThrowsAsync<RpcException>(() => RegistryUpload.RegisterCheckpointAsync(Registry, new RegisterVersionHeader
        {
            Name = name, Sha256 = new string('0', 64), Size = bytes.Length,
            Metadata = new VersionMetadata { Arch = "squeezenet1_1", Classes = { "Mesodinium_major", "Strombidium-like" }, Resize = 32 },
        }, new MemoryStream(bytes), PlatformFixture.Auth));
        var announced = await _listener.WaitForAsync(r => r.Path.StartsWith("/failed/", StringComparison.Ordinal), TimeSpan.FromSeconds(60));

        Assert.Equal(StatusCode.DataLoss, refused.StatusCode);
        Assert.Equal("version.failed", announced.Headers["X-Ifcb-Event"]);
        Assert.True(SignatureHolds(announced));
        var failed = await Registry.GetVersionAsync(new VersionRef { Name = name, Version = 1 });
        using (var body = JsonDocument.Parse(announced.Body))
        {
            var root = body.RootElement;
            Assert.Equal((name, 1, failed.StatusMessage), (root.GetProperty("model").GetString(), root.GetProperty("version").GetInt32(),
                root.GetProperty("reason").GetString()));
        }
        Assert.Equal(VersionStatus.Failed, failed.Status);

        await Registry.DeleteWebhookAsync(new WebhookRef { Id = hook.Id }, PlatformFixture.Auth);
    }

    [Fact]
    public async Task Creating_a_webhook_checks_its_url_secret_and_events()
    {
        async Task<RpcException> Refused(CreateWebhookRequest request) =>
            await Assert.ThrowsAsync<RpcException>(async () => await Registry.CreateWebhookAsync(request, PlatformFixture.Auth));

        var badUrl = await Refused(new CreateWebhookRequest { Url = "ftp://127.0.0.1/x", Secret = Secret });
        var badSecret = await Refused(new CreateWebhookRequest { Url = _listener.Url, Secret = "short" });
        var badEvent = await Refused(new CreateWebhookRequest { Url = _listener.Url, Secret = Secret, Events = { "model.exploded" } });
        var noKey = await Assert.ThrowsAsync<RpcException>(async () =>
            await Registry.CreateWebhookAsync(new CreateWebhookRequest { Url = _listener.Url, Secret = Secret }));

        Assert.All([badUrl, badSecret, badEvent], e => Assert.Equal(StatusCode.InvalidArgument, e.StatusCode));
        Assert.Contains("absolute http", badUrl.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.Unauthenticated, noKey.StatusCode);
    }

    public void Dispose() => _listener.Dispose();

    /// <summary>One request as the listener received it.</summary>
    private sealed record ReceivedRequest(string Path, System.Collections.Specialized.NameValueCollection Headers, byte[] Body);

    /// <summary>
    /// A real HTTP listener on a free loopback port. Paths under /silent/ are taken and never answered; paths given to
    /// <see cref="FailFirst"/> answer 500 that many times; everything else answers 200.
    /// </summary>
    private sealed class WebhookListener : IDisposable
    {
        private readonly HttpListener _http = new();
        private readonly ConcurrentQueue<ReceivedRequest> _received = new();
        private readonly ConcurrentDictionary<string, int> _failuresLeft = new();
        private readonly ConcurrentBag<HttpListenerContext> _held = [];
        private readonly CancellationTokenSource _stop = new();

        public string Url { get; private init; } = "";

        public IReadOnlyList<ReceivedRequest> Received => [.. _received];

        public static WebhookListener Start()
        {
            int port;
            using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                port = ((IPEndPoint)probe.LocalEndPoint!).Port;
            }
            var listener = new WebhookListener { Url = $"http://127.0.0.1:{port}/" };
            listener._http.Prefixes.Add(listener.Url);
            listener._http.Start();
            _ = listener.ServeAsync();
            return listener;
        }

        public void FailFirst(string pathPrefix, int times) => _failuresLeft[pathPrefix] = times;

        public async Task<ReceivedRequest> WaitForAsync(Func<ReceivedRequest, bool> match, TimeSpan timeout)
        {
            var watch = Stopwatch.StartNew();
            while (true)
            {
                if (_received.FirstOrDefault(match) is { } found)
                    return found;
                if (watch.Elapsed > timeout)
                {
                    throw new TimeoutException($"The listener received no matching request within {timeout}; it got: " +
                        string.Join(", ", _received.Select(r => $"{r.Path} {r.Headers["X-Ifcb-Event"]}")));
                }
                await Task.Delay(100);
            }
        }

        private async Task ServeAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                HttpListenerContext context;
                try
                {
                    context = await _http.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }
                _ = HandleAsync(context);
            }
        }

        private async Task HandleAsync(HttpListenerContext context)
        {
            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            var path = context.Request.Url!.AbsolutePath;
            _received.Enqueue(new ReceivedRequest(path, new System.Collections.Specialized.NameValueCollection(context.Request.Headers),
                body.ToArray()));
            if (path.StartsWith("/silent/", StringComparison.Ordinal))
            {
                _held.Add(context);
                return;
            }
            // The count left after this request's decrement: the request fails while it is still >= 0.
            var prefix = _failuresLeft.Keys.FirstOrDefault(p => path.StartsWith(p, StringComparison.Ordinal));
            var fail = prefix is not null && _failuresLeft.AddOrUpdate(prefix, -1, (_, left) => left - 1) >= 0;
            context.Response.StatusCode = fail ? 500 : 200;
            context.Response.Close();
        }

        public void Dispose()
        {
            _stop.Cancel();
            foreach (var held in _held)
                held.Response.Abort();
            _http.Close();
            _stop.Dispose();
        }
    }
}
