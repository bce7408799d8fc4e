using System.CommandLine;
using System.Globalization;
using Ifcb.Protos;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary><c>ifcb models history NAME</c>: the model's audit log.</summary>
public static class ModelsHistoryCommand
{
    public static Command Build(CliContext context)
    {
        var name = new Argument<string>("NAME");
        var limit = new Option<int>("--limit") { Description = "At most this many entries.", DefaultValueFactory = _ => 100 };
        var command = new Command("history", "The model's audit log, oldest first.") { name, limit };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var entries = (await platform.Registry.GetHistoryAsync(
                new GetHistoryRequest { Name = parse.GetValue(name), PageSize = Math.Clamp(parse.GetValue(limit), 1, 1000) },
                cancellationToken: ct)).Entries;
            if (parse.GetValue(GlobalOptions.Json))
            {
                context.WriteJson(entries);
                return ExitCodes.Success;
            }
            var table = new Table().Border(TableBorder.Rounded).AddColumns("at", "actor", "action", "version", "details");
            foreach (var e in entries)
                table.AddRow(e.At, Markup.Escape(e.Actor), e.Action, e.Version == 0 ? "" : e.Version.ToString(CultureInfo.InvariantCulture),
                    Markup.Escape(string.Join(", ",
                        e.Details.OrderBy(d => d.Key, StringComparer.Ordinal).Select(d => $"{d.Key}={d.Value}"))));
            context.Console.Write(table);
            return ExitCodes.Success;
        });
        return command;
    }
}
