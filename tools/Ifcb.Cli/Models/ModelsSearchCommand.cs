using System.CommandLine;
using System.Globalization;
using Ifcb.Client;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>
/// <c>ifcb models search "FILTER" [--order-by "KEYS"] [--models]</c>: versions (or registered models) matching a filter in
/// MLflow's grammar, e.g. <c>"name LIKE 'plank%' AND metrics.f1_weighted &gt;= 0.8"</c>, sorted by <c>--order-by</c>.
/// </summary>
public static class ModelsSearchCommand
{
    public static Command Build(CliContext context)
    {
        var filter = new Argument<string?>("FILTER")
        {
            Description = "Conditions joined with AND, e.g. \"tags.stage = 'production' AND metrics.f1_weighted >= 0.8\"; " +
                "keys: name, version, status, creation_time, last_updated_time, tags.KEY, metrics.KEY, params.KEY. Omit for all.",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var orderBy = new Option<string?>("--order-by")
        {
            Description = "Sort keys, each optionally ASC or DESC, e.g. \"metrics.f1_weighted DESC, creation_time ASC\".",
        };
        var models = new Option<bool>("--models")
        {
            Description = "Search registered models (name, tags.KEY, creation_time, last_updated_time) instead of versions.",
        };
        var limit = new Option<int>("--limit") { Description = "At most this many results.", DefaultValueFactory = _ => 100 };
        var command = new Command("search", "Search versions (or models) with a filter and an ordering.")
        {
            filter, orderBy, models, limit,
        };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var (text, order, count) = (parse.GetValue(filter) ?? "", parse.GetValue(orderBy) ?? "", Math.Max(parse.GetValue(limit), 1));
            var json = parse.GetValue(GlobalOptions.Json);
            if (parse.GetValue(models))
            {
                var found = await RegistrySearch.ModelsAsync(platform.Registry, text, order, count, ct).ToListAsync(ct);
                if (json)
                {
                    context.WriteJson(found);
                    return ExitCodes.Success;
                }
                var modelTable = new Table().Border(TableBorder.Rounded).AddColumns("name", "latest", "aliases", "tags", "updated");
                foreach (var m in found)
                {
                    modelTable.AddRow(Markup.Escape(m.Name), m.LatestVersion.ToString(CultureInfo.InvariantCulture),
                        Markup.Escape(ModelVersionView.Aliases(m)),
                        Markup.Escape(string.Join(", ", m.Tags.Select(t => $"{t.Key}={t.Value}"))), m.UpdatedAt);
                }
                context.Console.Write(modelTable);
                return ExitCodes.Success;
            }

            var versions = await RegistrySearch.VersionsAsync(platform.Registry, text, order, count, ct).ToListAsync(ct);
            if (json)
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
