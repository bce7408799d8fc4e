using System.CommandLine;
using System.Globalization;
using Ifcb.Protos;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary><c>ifcb models list</c>: registered models.</summary>
public static class ModelsListCommand
{
    public static Command Build(CliContext context)
    {
        var limit = new Option<int>("--limit") { Description = "At most this many models.", DefaultValueFactory = _ => 100 };
        var command = new Command("list", "List registered models.") { limit };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var models = (await platform.Registry.ListModelsAsync(
                new ListModelsRequest { PageSize = Math.Clamp(parse.GetValue(limit), 1, 1000) }, cancellationToken: ct)).Models;
            if (parse.GetValue(GlobalOptions.Json))
            {
                context.WriteJson(models);
                return ExitCodes.Success;
            }
            var table = new Table().Border(TableBorder.Rounded).AddColumns("name", "latest", "aliases", "description", "updated");
            foreach (var m in models)
                table.AddRow(Markup.Escape(m.Name), m.LatestVersion.ToString(CultureInfo.InvariantCulture),
                    Markup.Escape(ModelVersionView.Aliases(m)), Markup.Escape(m.Description), m.UpdatedAt);
            context.Console.Write(table);
            return ExitCodes.Success;
        });
        return command;
    }
}
