using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Google.Protobuf;

namespace Ifcb.EndToEnd.Tests;

/// <summary>A span as the services exported it over OTLP.</summary>
public sealed record ReceivedSpan(
    string Service, string Scope, string TraceId, string SpanId, string? ParentSpanId, string Name, SpanKind Kind,
    IReadOnlyDictionary<string, string> Attributes)
{
    public override string ToString() => $"{Service}/{Scope}: {Name} ({Kind})";
}

/// <summary>A metric stream's name as a service exported it over OTLP.</summary>
public sealed record ReceivedMetric(string Service, string Scope, string Name);

/// <summary>OTLP span kinds (opentelemetry/proto/trace/v1 Span.SpanKind).</summary>
public enum SpanKind
{
    Unspecified = 0,
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

/// <summary>
/// Stands in for the Aspire dashboard in tests: an OTLP/HTTP receiver (protobuf encoding, the services' exporters post
/// to /v1/traces, /v1/metrics and /v1/logs) that records spans and metric names. Reads the wire format with
/// Google.Protobuf's CodedInputStream and the OTLP field numbers, keeping only what the tests assert on; logs are
/// accepted and dropped.
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly ConcurrentQueue<ReceivedSpan> _spans = new();
    private readonly ConcurrentQueue<ReceivedMetric> _metrics = new();
    private readonly Task _loop;

    private OtlpReceiver(int port)
    {
        Endpoint = $"http://127.0.0.1:{port}";
        _listener.Prefixes.Add(Endpoint + "/");
        _listener.Start();
        _loop = Task.Run(ServeAsync);
    }

    /// <summary>The base address for OTEL_EXPORTER_OTLP_ENDPOINT (with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf).</summary>
    public string Endpoint { get; }

    /// <summary>Requests that could not be parsed: a test asserting on telemetry should also assert this stays zero.</summary>
    public int Malformed { get; private set; }

    public IReadOnlyList<ReceivedSpan> Spans => [.. _spans];

    public IReadOnlyList<ReceivedMetric> Metrics => [.. _metrics];

    public static OtlpReceiver Start()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return new OtlpReceiver(port);
    }

    /// <summary>Polls the received spans until <paramref name="done"/> accepts them; on timeout, returns what arrived.</summary>
    public async Task<IReadOnlyList<ReceivedSpan>> WaitForSpansAsync(Func<IReadOnlyList<ReceivedSpan>, bool> done, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var spans = Spans;
            if (done(spans) || DateTime.UtcNow > deadline)
                return spans;
            await Task.Delay(250);
        }
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            try
            {
                using var body = new MemoryStream();
                await context.Request.InputStream.CopyToAsync(body);
                var bytes = body.ToArray();
                switch (context.Request.Url?.AbsolutePath)
                {
                    case "/v1/traces":
                        foreach (var span in ReadTraces(bytes))
                            _spans.Enqueue(span);
                        break;
                    case "/v1/metrics":
                        foreach (var metric in ReadMetrics(bytes))
                            _metrics.Enqueue(metric);
                        break;
                }
                // An empty Export*ServiceResponse: everything accepted.
                context.Response.StatusCode = 200;
                context.Response.ContentType = "application/x-protobuf";
            }
            catch (InvalidProtocolBufferException)
            {
                Malformed++;
                context.Response.StatusCode = 400;
            }
            catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException)
            {
                // The exporter went away mid-request (its service was stopped or killed, as at the end of every test
                // run): nothing arrived to record, and nobody is left to answer.
                context.Response.Abort();
                continue;
            }
            context.Response.Close();
        }
    }

    // Traces and metrics share one layout: Export{Trace,Metrics}ServiceRequest: 1 resource_{spans,metrics};
    // Resource{Spans,Metrics}: 1 resource, 2 scope_{spans,metrics}; Scope{Spans,Metrics}: 1 scope, 2 {spans,metrics}.
    private static IEnumerable<(string Service, string Scope, byte[] Item)> ScopedItems(byte[] request)
    {
        foreach (var resourceItems in Fields(request, 1))
        {
            var service = ServiceName(resourceItems);
            foreach (var scopeItems in Fields(resourceItems, 2))
            {
                var scope = ScopeName(scopeItems);
                foreach (var item in Fields(scopeItems, 2))
                    yield return (service, scope, item);
            }
        }
    }

    private static List<ReceivedSpan> ReadTraces(byte[] request) =>
        [.. ScopedItems(request).Select(x => ReadSpan(x.Service, x.Scope, x.Item))];

    // Metric: 1 name.
    private static List<ReceivedMetric> ReadMetrics(byte[] request) =>
        [.. ScopedItems(request).Select(x => new ReceivedMetric(x.Service, x.Scope, Text(Fields(x.Item, 1).FirstOrDefault())))];

    // Span: 1 trace_id, 2 span_id, 4 parent_span_id, 5 name, 6 kind, 9 attributes.
    private static ReceivedSpan ReadSpan(string service, string scope, byte[] span)
    {
        string? traceId = null, spanId = null, parent = null, name = "";
        var kind = SpanKind.Unspecified;
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
        var input = new CodedInputStream(span);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: traceId = Convert.ToHexStringLower(input.ReadBytes().Span); break;
                case 2: spanId = Convert.ToHexStringLower(input.ReadBytes().Span); break;
                case 4:
                    var bytes = input.ReadBytes();
                    parent = bytes.Length == 0 ? null : Convert.ToHexStringLower(bytes.Span);
                    break;
                case 5: name = input.ReadString(); break;
                case 6: kind = (SpanKind)input.ReadEnum(); break;
                case 9:
                    var (key, value) = KeyValue(input.ReadBytes().ToByteArray());
                    attributes[key] = value;
                    break;
                default: input.SkipLastField(); break;
            }
        }
        return new ReceivedSpan(service, scope, traceId ?? "", spanId ?? "", parent, name, kind, attributes);
    }

    // Resource: 1 attributes; the service.name attribute names the service.
    private static string ServiceName(byte[] resourceSpans)
    {
        foreach (var resource in Fields(resourceSpans, 1))
            foreach (var attribute in Fields(resource, 1))
                if (KeyValue(attribute) is ("service.name", var value))
                    return value;
        return "";
    }

    // InstrumentationScope: 1 name.
    private static string ScopeName(byte[] scoped) => Text(Fields(scoped, 1).SelectMany(scope => Fields(scope, 1)).FirstOrDefault());

    // KeyValue: 1 key, 2 value. AnyValue: 1 string, 2 bool, 3 int64, 4 double; other kinds are not needed here.
    private static (string Key, string Value) KeyValue(byte[] keyValue)
    {
        var key = Text(Fields(keyValue, 1).FirstOrDefault());
        var value = "";
        foreach (var any in Fields(keyValue, 2))
        {
            var input = new CodedInputStream(any);
            uint tag;
            while ((tag = input.ReadTag()) != 0)
            {
                value = WireFormat.GetTagFieldNumber(tag) switch
                {
                    1 => input.ReadString(),
                    2 => input.ReadBool() ? "true" : "false",
                    3 => input.ReadInt64().ToString(CultureInfo.InvariantCulture),
                    4 => input.ReadDouble().ToString(CultureInfo.InvariantCulture),
                    _ => Skip(input, value),
                };
            }
        }
        return (key, value);
    }

    private static string Skip(CodedInputStream input, string value)
    {
        input.SkipLastField();
        return value;
    }

    private static string Text(byte[]? utf8) => utf8 is null ? "" : System.Text.Encoding.UTF8.GetString(utf8);

    // The payloads of every length-delimited occurrence of field <number> in a message.
    private static List<byte[]> Fields(byte[] message, int number)
    {
        var result = new List<byte[]>();
        var input = new CodedInputStream(message);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) == number && WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited)
                result.Add(input.ReadBytes().ToByteArray());
            else
                input.SkipLastField();
        }
        return result;
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Close();
        await _loop.ConfigureAwait(false);
    }
}
