using System.CommandLine;
using Ifcb.Protos;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary><c>ifcb models alias NAME ALIAS VERSION</c> (or <c>--delete</c>): move or remove an alias.</summary>
public static class ModelsAliasCommand
{
    public static Command Build(CliContext context)
    {
        var name = new Argument<string>("NAME");
        var alias = new Argument<string>("ALIAS") { Description = "Alias without '@', e.g. production." };
        var version = new Argument<int?>("VERSION")
        {
            Description = "Version to point the alias at (omit with --delete).", Arity = ArgumentArity.ZeroOrOne,
        };
        var delete = new Option<bool>("--delete") { Description = "Remove the alias." };
        var command = new Command("alias", "Point an alias at a READY version (created or moved atomically), or remove it.")
        {
            name, alias, version, delete,
        };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            RegisteredModel model;
            if (parse.GetValue(delete))
            {
                if (parse.GetValue(version) is not null)
                    throw new UsageException("models alias --delete takes NAME ALIAS without a VERSION.");
                model = await platform.Registry.DeleteAliasAsync(
                    new DeleteAliasRequest { Name = parse.GetValue(name), Alias = parse.GetValue(alias) }, platform.Auth,
                    cancellationToken: ct);
            }
            else
            {
                var target = parse.GetValue(version) ?? throw new UsageException("models alias needs NAME ALIAS VERSION (or --delete).");
                model = await platform.Registry.SetAliasAsync(
                    new SetAliasRequest { Name = parse.GetValue(name), Alias = parse.GetValue(alias), Version = target }, platform.Auth,
                    cancellationToken: ct);
            }
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(model);
            else
                context.Console.MarkupLine(model.Aliases.TryGetValue(parse.GetValue(alias)!, out var v)
                    ? $"{Markup.Escape(model.Name)}@{Markup.Escape(parse.GetValue(alias)!)} → version {v}"
                    : $"{Markup.Escape(model.Name)}@{Markup.Escape(parse.GetValue(alias)!)} removed");
            return ExitCodes.Success;
        });
        return command;
    }
}
