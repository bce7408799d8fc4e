using System.CommandLine;
using System.Globalization;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Ifcb.Client;
using Ifcb.Protos;

namespace Ifcb.Cli;

/// <summary>Which services a command talks to.</summary>
public enum PlatformService
{
    Training,
    NormStats,
    Registry,
}

/// <summary>
/// The platform's gRPC services as one command sees them. <c>--server</c> is the platform's entry point (the Training
/// service). NormStats and Registry each have their own address: given explicitly (--normstats-url, --registry-url),
/// else discovered from Training's GetInfo (it reports its peers' addresses), else the --server address itself (a
/// deployment behind one gateway).
/// </summary>
/// <remarks>
/// Every call made through it gets the same behaviour (see <see cref="CallPolicyInterceptor"/>, <see cref="CallRetry"/>):
/// unary calls have a deadline (<see cref="CallTimeout"/>, 30 s unless --timeout says otherwise) and idempotent ones are
/// retried on Unavailable, DeadlineExceeded and ResourceExhausted (5 attempts, 0.25 → 4 s jittered backoff, 60 s in
/// all); connecting gives up after <see cref="ConnectTimeout"/>; a stream's connection is pinged every
/// <see cref="KeepAlivePingDelay"/> of silence and dropped when a ping is not answered in <see cref="KeepAlivePingTimeout"/>,
/// so a watch notices a dead server within about 30 s; failures name the service and its address.
/// </remarks>
public sealed class PlatformConnection : IDisposable
{
    /// <summary>How long to wait for a TCP connection to a service (a host that is gone answers nothing).</summary>
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Silence on a connection with calls in flight after which the client pings the server.</summary>
    public static readonly TimeSpan KeepAlivePingDelay = TimeSpan.FromSeconds(20);

    /// <summary>How long a ping may go unanswered before the connection (and its calls, as Unavailable) is dropped.</summary>
    public static readonly TimeSpan KeepAlivePingTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Shorter keep-alive settings for the calls made in one async flow: tests of a server that stops answering use
    /// it so they need not wait half a minute; nothing else sets it.
    /// </summary>
    internal static readonly AsyncLocal<(TimeSpan Delay, TimeSpan Timeout)?> KeepAliveOverride = new();

    /// <summary>The longest --timeout accepted.</summary>
    public static readonly TimeSpan MaxCallTimeout = TimeSpan.FromHours(1);

    private readonly Lock _gate = new();
    private readonly Dictionary<PlatformService, string?> _urls;
    private readonly HashSet<PlatformService> _configured;
    private readonly Dictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);
    private readonly string? _apiKey;

    private PlatformConnection(Dictionary<PlatformService, string?> urls, string? apiKey, TimeSpan callTimeout, CallRetry retry)
    {
        _urls = urls;
        _configured = [.. urls.Where(u => u.Value is not null).Select(u => u.Key)];
        _apiKey = apiKey;
        CallTimeout = callTimeout;
        Retry = retry;
    }

    /// <summary>The deadline of each attempt of a unary call.</summary>
    public TimeSpan CallTimeout { get; }

    /// <summary>When failed idempotent calls, uploads with a key, downloads and watches are tried again.</summary>
    public CallRetry Retry { get; }

    /// <summary>Reads the flags, falling back to the IFCB_* environment variables; retries are noted on stderr.</summary>
    public static PlatformConnection From(ParseResult parse, CliContext context)
    {
        string? Value(System.CommandLine.Option<string?> option, string variable) =>
            NonEmpty(parse.GetValue(option)) ?? NonEmpty(context.Environment(variable));
        var server = Value(GlobalOptions.Server, GlobalOptions.ServerVariable);
        var urls = new Dictionary<PlatformService, string?>
        {
            [PlatformService.Training] = Value(GlobalOptions.TrainingUrl, GlobalOptions.TrainingUrlVariable) ?? server,
            [PlatformService.NormStats] = Value(GlobalOptions.NormStatsUrl, GlobalOptions.NormStatsUrlVariable),
            [PlatformService.Registry] = Value(GlobalOptions.RegistryUrl, GlobalOptions.RegistryUrlVariable),
        };
        var timeout = ParseTimeout(Value(GlobalOptions.Timeout, GlobalOptions.TimeoutVariable));
        var retry = CallRetry.Default with
        {
            // A --timeout above 30 s stretches the budget so the call still gets a second attempt.
            Budget = TimeSpan.FromTicks(Math.Max(CallRetry.Default.Budget.Ticks, 2 * timeout.Ticks)),
            OnRetry = notice => context.Warn(notice.ToString()),
        };
        return new PlatformConnection(urls, Value(GlobalOptions.ApiKey, GlobalOptions.ApiKeyVariable), timeout, retry);
    }

    private static TimeSpan ParseTimeout(string? text)
    {
        if (text is null)
            return CallPolicyInterceptor.DefaultCallTimeout;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || !double.IsFinite(seconds)
            || seconds <= 0 || seconds > MaxCallTimeout.TotalSeconds)
            throw new UsageException($"--timeout {text}: give the seconds a call may take, a number above 0 and at most " +
                $"{MaxCallTimeout.TotalSeconds:0} (default {CallPolicyInterceptor.DefaultCallTimeout.TotalSeconds:0}).");
        return TimeSpan.FromSeconds(seconds);
    }

    /// <summary>True when an address is configured for the service (train and norm then run on the platform).</summary>
    public bool Has(PlatformService service) => _urls[service] is not null || _urls[PlatformService.Training] is not null;

    /// <summary>The service's address: configured, else discovered through Training (which asks Training once).</summary>
    public string? UrlOf(PlatformService service) => KnownUrl(service) ?? DiscoverPeer(service);

    /// <summary>The service's address if it was configured or already discovered; never asks anything.</summary>
    public string? KnownUrl(PlatformService service)
    {
        lock (_gate)
            return _urls[service];
    }

    /// <summary>
    /// Takes the peers' addresses from Training's GetInfo (details "normstats_url"/"registry_url"); a peer it does not
    /// report is assumed behind the Training address (one gateway). Configured addresses are kept.
    /// </summary>
    public void LearnPeers(ServiceInfo trainingInfo)
    {
        ArgumentNullException.ThrowIfNull(trainingInfo);
        lock (_gate)
        {
            var training = _urls[PlatformService.Training];
            foreach (var (service, key) in new[] { (PlatformService.NormStats, "normstats_url"),
                (PlatformService.Registry, "registry_url") })
            {
                if (_configured.Contains(service))
                    continue;
                _urls[service] = trainingInfo.Details.TryGetValue(key, out var discovered) && !string.IsNullOrWhiteSpace(discovered)
                    ? discovered
                    : training;
            }
        }
    }

    /// <summary>Asks Training for the peers' addresses; null without a Training address. GetInfo is a read, so it is retried.</summary>
    private string? DiscoverPeer(PlatformService service)
    {
        if (service == PlatformService.Training || KnownUrl(PlatformService.Training) is null)
            return null;
        LearnPeers(Training.GetInfo(new GetInfoRequest()));
        return KnownUrl(service);
    }

    /// <summary>Call metadata with the API key (x-api-key), or none when no key is configured.</summary>
    public Metadata? Auth => _apiKey is null ? null : new Metadata { { ApiKeyHeader, _apiKey } };

    private const string ApiKeyHeader = "x-api-key";

    public Ifcb.Protos.Training.TrainingClient Training => new(Invoker(PlatformService.Training));
    public Datasets.DatasetsClient Datasets => new(Invoker(PlatformService.Training));

    /// <summary>RUN jobs: served by the Training service (its workers run them).</summary>
    public Runs.RunsClient Runs => new(Invoker(PlatformService.Training));

    /// <summary>Sweeps: served by the Training service (their trials are training jobs).</summary>
    public Sweeps.SweepsClient Sweeps => new(Invoker(PlatformService.Training));
    public Ifcb.Protos.NormStats.NormStatsClient NormStats => new(Invoker(PlatformService.NormStats));
    public Registry.RegistryClient Registry => new(Invoker(PlatformService.Registry));

    /// <summary>Calls to the service, with the deadlines, retries and error messages described on the class.</summary>
    public CallInvoker Invoker(PlatformService service)
    {
        var url = UrlOf(service) ?? throw new UsageException(
            $"No address for the {service} service: pass --server URL (or set {GlobalOptions.ServerVariable}), " +
            $"or --{service.ToString().ToLowerInvariant()}-url URL.");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            throw new UsageException($"'{url}' is not an http:// or https:// URL.");
        GrpcChannel? channel;
        var (pingDelay, pingTimeout) = KeepAliveOverride.Value ?? (KeepAlivePingDelay, KeepAlivePingTimeout);
        lock (_gate)
        {
            if (!_channels.TryGetValue(url, out channel))
                _channels[url] = channel = GrpcChannel.ForAddress(uri, new GrpcChannelOptions
                {
                    MaxReceiveMessageSize = 64 * 1024 * 1024,
                    HttpHandler = new SocketsHttpHandler
                    {
                        ConnectTimeout = ConnectTimeout,
                        KeepAlivePingDelay = pingDelay,
                        KeepAlivePingTimeout = pingTimeout,
                        KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
                        EnableMultipleHttp2Connections = true,
                    },
                    DisposeHttpClient = true,
                });
        }
        var invoker = channel.Intercept(new CallPolicyInterceptor(service.ToString(), url, Retry, CallTimeout));
        // A registry may demand a key for reads too (Ifcb:Registry:RequireKeyForReads): every Registry call carries the key.
        return service == PlatformService.Registry && _apiKey is { } key
            ? invoker.Intercept(headers =>
            {
                if (headers.GetValue(ApiKeyHeader) is null)
                    headers.Add(ApiKeyHeader, key);
                return headers;
            })
            : invoker;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var channel in _channels.Values)
                channel.Dispose();
            _channels.Clear();
        }
    }

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
