using System.CommandLine;
using Grpc.Core;
using Grpc.Net.Client;
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
public sealed class PlatformConnection : IDisposable
{
    private readonly Dictionary<PlatformService, string?> _urls;
    private readonly Dictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);
    private readonly string? _apiKey;

    private PlatformConnection(Dictionary<PlatformService, string?> urls, string? apiKey)
    {
        _urls = urls;
        _apiKey = apiKey;
    }

    /// <summary>Reads the flags, falling back to the IFCB_* environment variables.</summary>
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
        return new PlatformConnection(urls, Value(GlobalOptions.ApiKey, GlobalOptions.ApiKeyVariable));
    }

    /// <summary>True when an address is configured for the service (train and norm then run on the platform).</summary>
    public bool Has(PlatformService service) => _urls[service] is not null || _urls[PlatformService.Training] is not null;

    public string? UrlOf(PlatformService service) => _urls[service] ?? DiscoverPeer(service);

    /// <summary>Asks Training for the peer's address (GetInfo details "normstats_url"/"registry_url"); null without a server.</summary>
    private string? DiscoverPeer(PlatformService service)
    {
        var training = _urls[PlatformService.Training];
        if (service == PlatformService.Training || training is null)
            return null;
        var key = service == PlatformService.NormStats ? "normstats_url" : "registry_url";
        var info = new Ifcb.Protos.Training.TrainingClient(Channel(PlatformService.Training))
            .GetInfo(new GetInfoRequest(), deadline: DateTime.UtcNow.AddSeconds(15));
        var url = info.Details.TryGetValue(key, out var discovered) && !string.IsNullOrWhiteSpace(discovered) ? discovered : training;
        _urls[service] = url;
        return url;
    }

    /// <summary>Call metadata with the API key (x-api-key), or none when no key is configured.</summary>
    public Metadata? Auth => _apiKey is null ? null : new Metadata { { "x-api-key", _apiKey } };

    public Ifcb.Protos.Training.TrainingClient Training => new(Channel(PlatformService.Training));
    public Datasets.DatasetsClient Datasets => new(Channel(PlatformService.Training));
    public Ifcb.Protos.NormStats.NormStatsClient NormStats => new(Channel(PlatformService.NormStats));
    public Registry.RegistryClient Registry => new(Channel(PlatformService.Registry));

    public GrpcChannel Channel(PlatformService service)
    {
        var url = _urls[service] ?? DiscoverPeer(service) ?? throw new UsageException(
            $"No address for the {service} service: pass --server URL (or set {GlobalOptions.ServerVariable}), " +
            $"or --{service.ToString().ToLowerInvariant()}-url URL.");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            throw new UsageException($"'{url}' is not an http:// or https:// URL.");
        if (!_channels.TryGetValue(url, out var channel))
            _channels[url] = channel = GrpcChannel.ForAddress(uri, new GrpcChannelOptions { MaxReceiveMessageSize = 64 * 1024 * 1024 });
        return channel;
    }

    public void Dispose()
    {
        foreach (var channel in _channels.Values)
            channel.Dispose();
    }

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
