using System.CommandLine;
using Ifcb.Protos;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary><c>ifcb models rename NAME NEW_NAME</c>: versions, aliases, tags and history move; the old name then redirects.</summary>
public static class ModelsRenameCommand
{
    public static Command Build(CliContext context)
    {
        var name = new Argument<string>("NAME");
        var newName = new Argument<string>("NEW_NAME");
        var command = new Command("rename", "Rename a model (versions, aliases, tags and history move with it).") { name, newName };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var request = new RenameModelRequest { Name = parse.GetValue(name)!, NewName = parse.GetValue(newName)! };
            var renamed = await platform.Registry.RenameModelAsync(request, platform.Auth, cancellationToken: ct);
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(renamed);
            else
                context.Console.MarkupLine(Markup.Escape($"{request.Name} → {renamed.Name} ({renamed.LatestVersion} versions numbered)"));
            return ExitCodes.Success;
        });
        return command;
    }
}
