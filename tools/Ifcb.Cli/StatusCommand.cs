using System.CommandLine;
using Grpc.Core;
using Ifcb.Protos;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary><c>ifcb status</c>: GetInfo of every platform service; exit 5 when any is unreachable.</summary>
public static class StatusCommand
{
    public sealed record ServiceStatus(string Service, string? Url, bool Up, string? Version, string? InstanceId, string? Machine,
        string? StartedAt, IReadOnlyDictionary<string, string>? Details, string? Error);

    public static Command Build(CliContext context)
    {
        var command = new Command("status", "Show each platform service's version, instance and details.");
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var statuses = new List<ServiceStatus>();
            foreach (var service in Enum.GetValues<PlatformService>())
                statuses.Add(await QueryAsync(platform, service, ct));
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(statuses);
            else
            {
                var table = new Table().Border(TableBorder.Rounded).AddColumns("service", "url", "status", "version", "instance", "details");
                foreach (var s in statuses)
                    table.AddRow(s.Service, Markup.Escape(s.Url ?? ""), s.Up ? "[green]up[/]" : "[red]down[/]", Markup.Escape(s.Version ?? ""),
                        Markup.Escape(s.InstanceId ?? ""),
                        Markup.Escape(s.Error ?? string.Join(", ", (s.Details ?? new Dictionary<string, string>()).OrderBy(d => d.Key, StringComparer.Ordinal).Select(d => $"{d.Key}={d.Value}"))));
                context.Console.Write(table);
            }
            foreach (var down in statuses.Where(s => !s.Up))
                context.Error.WriteLine($"error: {down.Service}: {down.Error}");
            return statuses.All(s => s.Up) ? ExitCodes.Success : ExitCodes.Unavailable;
        });
        return command;
    }

    private static async Task<ServiceStatus> QueryAsync(PlatformConnection platform, PlatformService service, CancellationToken cancellationToken)
    {
        var name = service.ToString().ToLowerInvariant();
        var url = platform.UrlOf(service);
        if (url is null)
            throw new UsageException($"ifcb status needs the platform's address: pass --server URL (or set {GlobalOptions.ServerVariable}).");
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(10);
            var request = new GetInfoRequest();
            var info = service switch
            {
                PlatformService.Training => await platform.Training.GetInfoAsync(request, deadline: deadline, cancellationToken: cancellationToken),
                PlatformService.NormStats => await platform.NormStats.GetInfoAsync(request, deadline: deadline, cancellationToken: cancellationToken),
                _ => await platform.Registry.GetInfoAsync(request, deadline: deadline, cancellationToken: cancellationToken),
            };
            return new ServiceStatus(name, url, true, info.Version, info.InstanceId, info.Machine, info.StartedAt, info.Details, null);
        }
        catch (RpcException e)
        {
            return new ServiceStatus(name, url, false, null, null, null, null, null, $"{e.StatusCode}: {e.Status.Detail}");
        }
    }
}
