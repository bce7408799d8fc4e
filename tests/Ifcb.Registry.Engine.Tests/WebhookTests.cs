using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Google.Protobuf;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine.Tests;

/// <summary>
/// Webhooks in the engine: what may be registered, which webhooks an event goes to, the delivery record's lifecycle
/// (lease, retries on the backoff schedule, give-up), the signature, and the sender against a real loopback listener.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class WebhookTests(AzuriteFixture azurite)
{
    private const string Actor = "tests";
    private const string Secret = "s3cret-s3cret-s3cret";

    private async Task<RegistryWebhooks> NewWebhooksAsync(WebhookOptions? options = null, TimeProvider? clock = null) =>
        new(await azurite.Azurite.CreateContainerAsync("registry"), options, clock);

    private static WebhookEvent Event(string kind, string? model, DateTimeOffset at) => new()
    {
        Kind = kind, Model = model, Version = 3, Actor = Actor, OccurredAt = at,
    };

    [Theory]
    [InlineData("", "url")]
    [InlineData("/relative/path", "absolute")]
    [InlineData("ftp://example.org/hook", "absolute http")]
    [InlineData("file:///etc/passwd", "absolute http")]
    [InlineData("https://user:pw@example.org/hook", "credentials")]
    public async Task A_url_that_is_not_absolute_http_without_credentials_is_refused(string url, string expected)
    {
        var webhooks = await NewWebhooksAsync();

        var refused = await Assert.ThrowsAsync<IfcbException>(() => webhooks.CreateAsync(new NewWebhook(url, null, [], Secret), Actor));

        Assert.Equal(ErrorKind.InvalidArgument, refused.Kind);
        Assert.Contains(expected, refused.Message, StringComparison.Ordinal);
        Assert.Empty(await webhooks.ListAsync());
    }

    [Fact]
    public async Task Events_secret_model_name_and_the_number_of_webhooks_are_checked()
    {
        var webhooks = await NewWebhooksAsync(new WebhookOptions { MaxWebhooks = 2 });
        const string url = "http://127.0.0.1:9/hook";

        async Task<IfcbException> Refused(NewWebhook request) =>
            await Assert.ThrowsAsync<IfcbException>(() => webhooks.CreateAsync(request, Actor));

        Assert.Contains("Unknown webhook event 'version.exploded'",
            (await Refused(new NewWebhook(url, null, ["version.exploded"], Secret))).Message, StringComparison.Ordinal);
        Assert.Contains("Unknown webhook event 'ping'", (await Refused(new NewWebhook(url, null, ["ping"], Secret))).Message,
            StringComparison.Ordinal);
        Assert.Contains("16 to 1024 characters (it has 5)", (await Refused(new NewWebhook(url, null, [], "short"))).Message,
            StringComparison.Ordinal);
        Assert.Equal(ErrorKind.InvalidArgument, (await Refused(new NewWebhook(url, "../escape", [], Secret))).Kind);
        Assert.Equal(ErrorKind.InvalidArgument, (await Refused(new NewWebhook(url + new string('x', 2048), null, [], Secret))).Kind);

        var first = await webhooks.CreateAsync(new NewWebhook(url, "plankton", ["version.registered", "version.registered"], Secret), Actor);
        await webhooks.CreateAsync(new NewWebhook(url, null, [], Secret), Actor);
        var full = await Refused(new NewWebhook(url, null, [], Secret));

        Assert.Equal(ErrorKind.ResourceExhausted, full.Kind);
        Assert.Contains("Ifcb:Webhooks:MaxWebhooks", full.Message, StringComparison.Ordinal);
        Assert.Matches("^[0-9a-f]{16}$", first.Id);
        Assert.Equal(["version.registered"], first.Events.ToArray());
        Assert.Equal(2, (await webhooks.ListAsync()).Count);
        await webhooks.DeleteAsync(first.Id);
        Assert.Equal(ErrorKind.NotFound, (await Assert.ThrowsAsync<IfcbException>(() => webhooks.GetAsync(first.Id))).Kind);
        Assert.Equal(ErrorKind.InvalidArgument, (await Assert.ThrowsAsync<IfcbException>(() => webhooks.GetAsync("../hooks"))).Kind);
    }

    [Fact]
    public void An_event_goes_to_registry_wide_webhooks_and_those_of_its_model_that_want_its_kind()
    {
        Webhook Hook(string id, string? model, string[] events, bool active = true) => new()
        {
            Id = id, Url = "http://127.0.0.1/", Model = model, Events = [.. events], Secret = Secret, Active = active,
            CreatedAt = DateTimeOffset.UnixEpoch, CreatedBy = Actor,
        };
        Webhook[] hooks =
        [
            Hook("everything", null, []),
            Hook("wide-ready", null, [WebhookEventKinds.VersionRegistered]),
            Hook("mine-all", "mine", []),
            Hook("mine-alias", "mine", [WebhookEventKinds.AliasSet, WebhookEventKinds.AliasDeleted]),
            Hook("other", "other", []),
            Hook("inactive", null, [], active: false),
        ];

        string[] Ids(string kind, string? model) => [.. RegistryWebhooks.Matching(hooks, kind, model).Select(h => h.Id)];

        Assert.Equal(["everything", "wide-ready", "mine-all"], Ids(WebhookEventKinds.VersionRegistered, "mine"));
        Assert.Equal(["everything", "mine-all", "mine-alias"], Ids(WebhookEventKinds.AliasSet, "mine"));
        Assert.Equal(["everything", "other"], Ids(WebhookEventKinds.TagSet, "other"));
        Assert.Equal(["everything"], Ids(WebhookEventKinds.RegistrationFailed, "unknown"));
        Assert.Empty(Ids(WebhookEventKinds.Ping, "mine"));
    }

    [Fact]
    public void The_retry_delay_doubles_from_the_base_up_to_the_cap()
    {
        var defaults = new WebhookOptions();
        Assert.Equal([10.0, 20, 40, 60, 60, 60], Enumerable.Range(1, 6).Select(n => defaults.RetryDelay(n).TotalSeconds));

        var quick = new WebhookOptions { RetryBaseDelay = TimeSpan.FromMilliseconds(200), RetryMaxDelay = TimeSpan.FromMilliseconds(500) };
        Assert.Equal([200.0, 400, 500, 500], Enumerable.Range(1, 4).Select(n => quick.RetryDelay(n).TotalMilliseconds));
        Assert.Throws<ArgumentException>(() => new WebhookOptions { RetryBaseDelay = TimeSpan.FromMinutes(2) }.Validated());
    }

    [Fact]
    public async Task A_delivery_is_leased_retried_on_schedule_and_given_up_after_the_last_attempt()
    {
        var clock = new ManualClock();
        var options = new WebhookOptions { MaxAttempts = 3 };
        var webhooks = await NewWebhooksAsync(options, clock);
        var hook = await webhooks.CreateAsync(new NewWebhook("http://127.0.0.1:9/hook", "mine", [], Secret), Actor);
        await webhooks.CreateAsync(new NewWebhook("http://127.0.0.1:9/other", "other", [], Secret), Actor);

        var delivery = Assert.Single(await webhooks.EnqueueAsync(Event(WebhookEventKinds.VersionRegistered, "mine", clock.GetUtcNow()), "msg-1"));
        // The same bus message again (a redelivery) is the same delivery, not a second one.
        Assert.Equal(delivery.Id, Assert.Single(await webhooks.EnqueueAsync(
            Event(WebhookEventKinds.VersionRegistered, "mine", clock.GetUtcNow()), "msg-1")).Id);
        Assert.Equal([(hook.Id, delivery.Id)], await webhooks.DueAsync());
        using (var payload = JsonDocument.Parse(delivery.Payload))
        {
            var root = payload.RootElement;
            Assert.Equal(("version.registered", "mine", 3, delivery.Id, hook.Id, Actor), (root.GetProperty("event").GetString(),
                root.GetProperty("model").GetString(), root.GetProperty("version").GetInt32(), root.GetProperty("delivery_id").GetString(),
                root.GetProperty("webhook_id").GetString(), root.GetProperty("actor").GetString()));
            Assert.False(root.TryGetProperty("alias", out _));
        }

        var attempt = await webhooks.TryStartAttemptAsync(hook.Id, delivery.Id);
        Assert.NotNull(attempt);
        Assert.Equal(Secret, attempt.Webhook.Secret);
        // Another replica (or a repeated command) finds it leased, and the sweep leaves it alone until the lease runs out.
        Assert.Null(await webhooks.TryStartAttemptAsync(hook.Id, delivery.Id));
        Assert.Empty(await webhooks.DueAsync());

        var afterFirst = (await webhooks.RecordAttemptAsync(attempt, new WebhookAttemptResult(500, "HTTP 500")))!;
        Assert.Equal((WebhookDeliveryStatus.Pending, 1, (int?)500, (DateTimeOffset?)(clock.GetUtcNow() + TimeSpan.FromSeconds(10))),
            (afterFirst.Status, afterFirst.Attempts, afterFirst.LastStatusCode, afterFirst.NextAttemptAt));
        Assert.Empty(await webhooks.DueAsync());
        Assert.Null(await webhooks.TryStartAttemptAsync(hook.Id, delivery.Id));

        clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Single(await webhooks.DueAsync());
        var second = await webhooks.TryStartAttemptAsync(hook.Id, delivery.Id);
        var afterSecond = (await webhooks.RecordAttemptAsync(second!, new WebhookAttemptResult(null, "No answer within 10 s")))!;
        Assert.Equal((2, (int?)null, (DateTimeOffset?)(clock.GetUtcNow() + TimeSpan.FromSeconds(20))),
            (afterSecond.Attempts, afterSecond.LastStatusCode, afterSecond.NextAttemptAt));

        clock.Advance(TimeSpan.FromSeconds(20));
        var third = await webhooks.TryStartAttemptAsync(hook.Id, delivery.Id);
        var failed = (await webhooks.RecordAttemptAsync(third!, new WebhookAttemptResult(404, "HTTP 404")))!;

        Assert.Equal((WebhookDeliveryStatus.Failed, 3, "HTTP 404", (DateTimeOffset?)null),
            (failed.Status, failed.Attempts, failed.LastError, failed.NextAttemptAt));
        Assert.Empty(await webhooks.DueAsync());
        clock.Advance(TimeSpan.FromHours(1));
        Assert.Null(await webhooks.TryStartAttemptAsync(hook.Id, delivery.Id));
        Assert.Equal(failed, Assert.Single((await webhooks.ListDeliveriesAsync(hook.Id)).Items));
    }

    [Fact]
    public async Task A_success_delivers_a_replica_that_died_mid_attempt_is_taken_over_and_deliveries_page_newest_first()
    {
        var clock = new ManualClock();
        var webhooks = await NewWebhooksAsync(clock: clock);
        var hook = await webhooks.CreateAsync(new NewWebhook("http://127.0.0.1:9/hook", null, [], Secret), Actor);
        var pings = new List<WebhookDelivery>();
        for (var i = 0; i < 3; i++)
        {
            pings.Add(await webhooks.PingAsync(hook.Id, Actor));
            clock.Advance(TimeSpan.FromSeconds(1));
        }

        // The replica holding the first attempt dies: nobody may take it until the lease runs out, then the sweep finds it.
        Assert.NotNull(await webhooks.TryStartAttemptAsync(hook.Id, pings[0].Id));
        Assert.DoesNotContain((hook.Id, pings[0].Id), await webhooks.DueAsync());
        clock.Advance(webhooks.Options.AttemptLease + TimeSpan.FromSeconds(1));
        Assert.Contains((hook.Id, pings[0].Id), await webhooks.DueAsync());
        var takeover = await webhooks.TryStartAttemptAsync(hook.Id, pings[0].Id);
        var delivered = (await webhooks.RecordAttemptAsync(takeover!, new WebhookAttemptResult(204, null)))!;

        Assert.Equal((WebhookDeliveryStatus.Delivered, 1, (DateTimeOffset?)clock.GetUtcNow()), (delivered.Status, delivered.Attempts, delivered.DeliveredAt));
        Assert.DoesNotContain((hook.Id, pings[0].Id), await webhooks.DueAsync());
        var first = await webhooks.ListDeliveriesAsync(hook.Id, pageSize: 2);
        Assert.Equal([pings[2].Id, pings[1].Id], first.Items.Select(d => d.Id));
        var rest = await webhooks.ListDeliveriesAsync(hook.Id, pageSize: 2, pageToken: first.NextPageToken);
        Assert.Equal([pings[0].Id], rest.Items.Select(d => d.Id));
        Assert.Null(rest.NextPageToken);
        Assert.All(pings, p => Assert.Equal("ping", p.Event));

        // Deleting the webhook drops its pending attempts and records.
        await webhooks.DeleteAsync(hook.Id);
        Assert.Empty(await webhooks.DueAsync());
        Assert.Equal(ErrorKind.NotFound, (await Assert.ThrowsAsync<IfcbException>(() => webhooks.ListDeliveriesAsync(hook.Id))).Kind);
    }

    [Fact]
    public async Task A_failed_registration_carries_the_version_it_left_FAILED_so_the_host_can_announce_it()
    {
        var (registry, _) = await azurite.NewRegistryAsync();
        var checkpoint = TestCheckpoint.Create();
        await registry.CreateModelAsync("failing", Actor);

        var mismatch = await Assert.ThrowsAsync<IfcbException>(() => registry.RegisterVersionAsync("failing",
            checkpoint.Request() with { Sha256 = new string('0', 64) }, checkpoint.Stream(), Actor));
        var refusedEarly = await Assert.ThrowsAsync<IfcbException>(() => registry.RegisterVersionAsync("failing",
            checkpoint.Request() with { SizeBytes = -1 }, checkpoint.Stream(), Actor));

        Assert.Equal(ErrorKind.DataLoss, mismatch.Kind);
        var failed = ModelRegistry.FailedVersionOf(mismatch);
        Assert.NotNull(failed);
        Assert.Equal(("failing", 1, ModelVersionStatus.Failed), (failed.ModelName, failed.Version, failed.Status));
        Assert.Equal(failed.StatusMessage, (await registry.GetVersionAsync("failing/1")).StatusMessage);
        // Refused before a version was allocated: nothing to announce.
        Assert.Null(ModelRegistry.FailedVersionOf(refusedEarly));
    }

    [Fact]
    public void The_signature_is_the_hmac_sha256_of_timestamp_dot_body_as_python_computes_it()
    {
        var body = Encoding.UTF8.GetBytes("{\"event\":\"ping\",\"model\":\"plankton\",\"note\":\"\u00e9t\u00e9\"}");
        const long timestamp = 1_700_000_000;
        var script = "import hmac, hashlib, sys\n" +
            "body = bytes.fromhex(sys.argv[2])\n" +
            "print('sha256=' + hmac.new(sys.argv[1].encode('utf-8'), b'1700000000.' + body, hashlib.sha256).hexdigest())\n";
        var expected = Python(script, Secret, Convert.ToHexString(body));

        Assert.Equal(expected, WebhookSignature.Compute(Secret, timestamp, body));
        Assert.True(WebhookSignature.Verify(Secret, timestamp, body, expected));
        Assert.False(WebhookSignature.Verify(Secret, timestamp + 1, body, expected));
        Assert.False(WebhookSignature.Verify("another-secret-entirely", timestamp, body, expected));
        Assert.False(WebhookSignature.Verify(Secret, timestamp, body, null));
    }

    [Fact]
    public void The_api_shape_of_a_webhook_never_carries_its_secret()
    {
        var hook = new Webhook
        {
            Id = "0123456789abcdef", Url = "https://example.org/hook", Secret = Secret, CreatedAt = DateTimeOffset.UnixEpoch, CreatedBy = Actor,
        };

        var proto = Ifcb.Registry.RegistryProtoMapping.ToProto(hook);

        Assert.True(proto.SecretSet);
        Assert.DoesNotContain(Secret, JsonFormatter.Default.Format(proto), StringComparison.Ordinal);
        Assert.Equal(-1, proto.ToByteArray().AsSpan().IndexOf(Encoding.UTF8.GetBytes(Secret).AsSpan()));
    }

    [Fact]
    public async Task The_sender_posts_a_signed_body_counts_only_2xx_follows_no_redirect_and_gives_up_at_its_timeout()
    {
        var options = new WebhookOptions { RequestTimeout = TimeSpan.FromSeconds(1) };
        using var sender = new Ifcb.Registry.WebhookSender(options);
        using var listener = LoopbackListener.Start(out var url);
        var attempt = new WebhookAttempt(
            new Webhook { Id = "0123456789abcdef", Url = url, Secret = Secret, CreatedAt = DateTimeOffset.UnixEpoch, CreatedBy = Actor },
            new WebhookDelivery
            {
                Id = "0638000000000000000-0123456789abcdef", WebhookId = "0123456789abcdef", Event = "ping", Payload = "{\"event\":\"ping\"}",
                Status = WebhookDeliveryStatus.Pending, CreatedAt = DateTimeOffset.UnixEpoch, UpdatedAt = DateTimeOffset.UnixEpoch,
            });

        async Task<(WebhookAttemptResult Result, HttpListenerRequest Request, byte[] Body)> Exchange(Action<HttpListenerResponse> answer)
        {
            var sending = sender.SendAsync(attempt, CancellationToken.None);
            var context = await listener.GetContextAsync().WaitAsync(TimeSpan.FromSeconds(10));
            using var received = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(received);
            answer(context.Response);
            context.Response.Close();
            return (await sending, context.Request, received.ToArray());
        }

        var (ok, request, body) = await Exchange(r => r.StatusCode = 202);
        Assert.True(ok.Delivered);
        Assert.Equal(("POST", "ping", attempt.Delivery.Id), (request.HttpMethod, request.Headers["X-Ifcb-Event"], request.Headers["X-Ifcb-Delivery"]));
        var timestamp = long.Parse(request.Headers["X-Ifcb-Timestamp"]!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(DateTimeOffset.UtcNow.ToUnixTimeSeconds() - timestamp, 0, 60);
        Assert.True(WebhookSignature.Verify(Secret, timestamp, body, request.Headers["X-Ifcb-Signature"]));
        Assert.Equal(attempt.Delivery.Payload, Encoding.UTF8.GetString(body));

        var (redirected, _, _) = await Exchange(r =>
        {
            r.StatusCode = 307;
            r.RedirectLocation = "http://127.0.0.1:9/elsewhere";
        });
        Assert.Equal((false, (int?)307), (redirected.Delivered, redirected.StatusCode));

        var (error, _, _) = await Exchange(r =>
        {
            r.StatusCode = 503;
            r.OutputStream.Write(Encoding.UTF8.GetBytes("busy, try later"));
        });
        Assert.Equal((false, (int?)503), (error.Delivered, error.StatusCode));
        Assert.Contains("busy, try later", error.Error, StringComparison.Ordinal);

        // A listener that takes the request and never answers: the attempt ends at the timeout, with no status.
        var watch = Stopwatch.StartNew();
        var silent = sender.SendAsync(attempt, CancellationToken.None);
        var held = await listener.GetContextAsync().WaitAsync(TimeSpan.FromSeconds(10));
        var timedOut = await silent.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal((false, (int?)null), (timedOut.Delivered, timedOut.StatusCode));
        Assert.Contains("No answer within 1 s", timedOut.Error, StringComparison.Ordinal);
        Assert.InRange(watch.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(8));
        held.Response.Abort();
    }

    private static string Python(string script, params string[] args)
    {
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, "python3 failed: " + error);
        return output.Trim();
    }

    /// <summary>An HttpListener on a free loopback port.</summary>
    private static class LoopbackListener
    {
        public static HttpListener Start(out string url)
        {
            int port;
            using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                port = ((IPEndPoint)probe.LocalEndPoint!).Port;
            }
            url = $"http://127.0.0.1:{port}/hook/";
            var listener = new HttpListener();
            listener.Prefixes.Add(url);
            listener.Start();
            return listener;
        }
    }
}
