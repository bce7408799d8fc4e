using System.CommandLine;
using Ifcb.Contracts;
using Ifcb.Protos;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary><c>ifcb models delete NAME|NAME/VERSION [--force]</c>: a model or one version and its checkpoint.</summary>
public static class ModelsDeleteCommand
{
    public static Command Build(CliContext context)
    {
        var reference = ModelArguments.Reference("NAME deletes the model; NAME/VERSION deletes one version and its checkpoint.");
        var force = new Option<bool>("--force")
        {
            Description = "Model: also delete every version. Version: also remove aliases pointing at it.",
        };
        var command = new Command("delete", "Delete a model or a version.") { reference, force };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var target = ModelRef.Parse(parse.GetValue(reference)!);
            if (target.Selector is ModelSelector.Alias or ModelSelector.Latest)
                throw new UsageException($"Delete a version by number (NAME/VERSION), not by '{target}'.");
            Google.Protobuf.IMessage deleted = target.Version is { } number
                ? await platform.Registry.DeleteVersionAsync(
                    new DeleteVersionRequest { Name = target.Name, Version = number, Force = parse.GetValue(force) }, platform.Auth,
                    cancellationToken: ct)
                : await platform.Registry.DeleteModelAsync(
                    new DeleteModelRequest { Name = target.Name, Force = parse.GetValue(force) }, platform.Auth, cancellationToken: ct);
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(deleted);
            else
                context.Console.MarkupLine($"Deleted {Markup.Escape(parse.GetValue(reference)!)}.");
            return ExitCodes.Success;
        });
        return command;
    }
}
