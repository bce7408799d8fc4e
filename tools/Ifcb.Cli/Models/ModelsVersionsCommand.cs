using System.CommandLine;
using Ifcb.Protos;

namespace Ifcb.Cli;

/// <summary><c>ifcb models versions [NAME]</c>: list or search versions by tags, metrics and status.</summary>
public static class ModelsVersionsCommand
{
    public static Command Build(CliContext context)
    {
        var name = new Argument<string?>("NAME")
        {
            Description = "Model name; omit to search every model.", Arity = ArgumentArity.ZeroOrOne,
        };
        var tags = new Option<string[]>("--tag") { Description = "KEY=VALUE version tags that must all match (repeatable)." };
        var metrics = new Option<string[]>("--metric") { Description = "Metric conditions such as f1_weighted>=0.8 (repeatable)." };
        var status = new Option<string?>("--status") { Description = "Only versions in this status." }
            .AcceptOnlyFromAmong("pending", "ready", "failed");
        var limit = new Option<int>("--limit") { Description = "At most this many versions.", DefaultValueFactory = _ => 100 };
        var command = new Command("versions", "List or search model versions.") { name, tags, metrics, status, limit };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var request = new SearchVersionsRequest
            {
                Name = parse.GetValue(name) ?? "",
                PageSize = Math.Clamp(parse.GetValue(limit), 1, 1000),
                Status = parse.GetValue(status) switch
                {
                    "pending" => VersionStatus.Pending,
                    "ready" => VersionStatus.Ready,
                    "failed" => VersionStatus.Failed,
                    _ => VersionStatus.Unspecified,
                },
            };
            foreach (var (key, value) in ModelArguments.KeyValues(parse.GetValue(tags), "--tag"))
                request.Tags[key] = value;
            foreach (var condition in parse.GetValue(metrics) ?? [])
                request.Metrics.Add(ModelArguments.ParseThreshold(condition));
            var versions = (await platform.Registry.SearchVersionsAsync(request, cancellationToken: ct)).Versions;
            if (parse.GetValue(GlobalOptions.Json))
            {
                context.WriteJson(versions);
                return ExitCodes.Success;
            }
            context.Console.Write(ModelVersionView.List(versions));
            return ExitCodes.Success;
        });
        return command;
    }
}
