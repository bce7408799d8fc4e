using System.CommandLine;
using Ifcb.Protos;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary><c>ifcb models tag NAME KEY VALUE [--version N]</c> (or <c>--delete</c>): tags on a model or a version.</summary>
public static class ModelsTagCommand
{
    public static Command Build(CliContext context)
    {
        var name = new Argument<string>("NAME");
        var key = new Argument<string>("KEY");
        var value = new Argument<string?>("VALUE") { Arity = ArgumentArity.ZeroOrOne, Description = "Omit with --delete." };
        var version = new Option<int?>("--version") { Description = "Tag this version instead of the model." };
        var delete = new Option<bool>("--delete") { Description = "Remove the tag." };
        var command = new Command("tag", "Set or remove a tag on a model (or with --version, on a version).")
        {
            name, key, value, version, delete,
        };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var registry = platform.Registry;
            var (modelName, tagKey, tagValue, versionNumber) =
                (parse.GetValue(name)!, parse.GetValue(key)!, parse.GetValue(value), parse.GetValue(version));
            Google.Protobuf.IMessage reply;
            if (parse.GetValue(delete))
            {
                var request = new DeleteTagRequest { Name = modelName, Key = tagKey, Version = versionNumber ?? 0 };
                reply = versionNumber is null
                    ? await registry.DeleteModelTagAsync(request, platform.Auth, cancellationToken: ct)
                    : await registry.DeleteVersionTagAsync(request, platform.Auth, cancellationToken: ct);
            }
            else
            {
                var request = new SetTagRequest
                {
                    Name = modelName, Key = tagKey,
                    Value = tagValue ?? throw new UsageException("models tag needs NAME KEY VALUE (or --delete)."),
                    Version = versionNumber ?? 0,
                };
                reply = versionNumber is null
                    ? await registry.SetModelTagAsync(request, platform.Auth, cancellationToken: ct)
                    : await registry.SetVersionTagAsync(request, platform.Auth, cancellationToken: ct);
            }
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(reply);
            else
                context.Console.MarkupLine(Markup.Escape($"{modelName}{(versionNumber is { } n ? $"/{n}" : "")}: " +
                    $"{tagKey}{(parse.GetValue(delete) ? " removed" : "=" + tagValue)}"));
            return ExitCodes.Success;
        });
        return command;
    }
}
