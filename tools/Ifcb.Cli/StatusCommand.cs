using System.CommandLine;
using Grpc.Core;
using Ifcb.Client;
using Ifcb.Protos;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>
/// <c>ifcb status</c>: GetInfo of every platform service, each reported up or down with its address and why; exit 5
/// when any is down. Training is asked first (it reports the others' addresses); the others are asked together.
/// </summary>
public static class StatusCommand
{
    public sealed record ServiceStatus(string Service, string? Url, bool Up, string? Version, string? InstanceId, string? Machine,
        string? StartedAt, IReadOnlyDictionary<string, string>? Details, string? Error);

    public static Command Build(CliContext context)
    {
        var command = new Command("status", "Show each platform service's state, version, instance and details.");
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            if (platform.KnownUrl(PlatformService.Training) is null)
                throw new UsageException(
                    $"ifcb status needs the platform's address: pass --server URL (or set {GlobalOptions.ServerVariable}).");
            var training = await QueryAsync(platform, PlatformService.Training, ct);
            var peers = await Task.WhenAll(new[] { PlatformService.NormStats, PlatformService.Registry }.Select(service =>
                platform.KnownUrl(service) is not null ? QueryAsync(platform, service, ct) : Task.FromResult(Unknown(service))));
            ServiceStatus[] statuses = [training, .. peers];
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(statuses);
            else
            {
                var table = new Table().Border(TableBorder.Rounded)
                    .AddColumns("service", "url", "status", "version", "instance", "details");
                foreach (var s in statuses)
                    table.AddRow(s.Service, Markup.Escape(s.Url ?? ""), s.Up ? "[green]up[/]" : "[red]down[/]",
                        Markup.Escape(s.Version ?? ""), Markup.Escape(s.InstanceId ?? ""),
                        Markup.Escape(s.Error ?? string.Join(", ", (s.Details ?? new Dictionary<string, string>())
                            .OrderBy(d => d.Key, StringComparer.Ordinal).Select(d => $"{d.Key}={d.Value}"))));
                context.Console.Write(table);
            }
            foreach (var down in statuses.Where(s => !s.Up))
                context.Error.WriteLine($"error: {down.Error}");
            return statuses.All(s => s.Up) ? ExitCodes.Success : ExitCodes.Unavailable;
        });
        return command;
    }

    private static async Task<ServiceStatus> QueryAsync(PlatformConnection platform, PlatformService service,
        CancellationToken cancellationToken)
    {
        var name = service.ToString().ToLowerInvariant();
        var url = platform.KnownUrl(service);
        try
        {
            var request = new GetInfoRequest();
            var info = service switch
            {
                PlatformService.Training => await platform.Training.GetInfoAsync(request, cancellationToken: cancellationToken),
                PlatformService.NormStats => await platform.NormStats.GetInfoAsync(request, cancellationToken: cancellationToken),
                _ => await platform.Registry.GetInfoAsync(request, cancellationToken: cancellationToken),
            };
            if (service == PlatformService.Training)
                platform.LearnPeers(info);
            return new ServiceStatus(name, url, true, info.Version, info.InstanceId, info.Machine, info.StartedAt, info.Details, null);
        }
        catch (RpcException e)
        {
            // A ServiceCallException's message already names the service and address; others get them here.
            // (without the hint to run ifcb status: this is it).
            var error = e is ServiceCallException
                ? e.Message.Replace(CallPolicyInterceptor.DownHint, "", StringComparison.Ordinal)
                : $"the {service} service at {url} answered {e.StatusCode}: {e.Status.Detail}";
            return new ServiceStatus(name, url, false, null, null, null, null, null, error);
        }
    }

    // Only when Training is down: once it answers, every peer has an address (reported, or Training's own).
    private static ServiceStatus Unknown(PlatformService service) =>
        new(service.ToString().ToLowerInvariant(), null, false, null, null, null, null, null,
            $"the {service} service: address unknown (the Training service, which reports it, is down); " +
            $"pass --{service.ToString().ToLowerInvariant()}-url URL to ask it directly.");
}
