using System.CommandLine;
using Ifcb.Platform;
using Ifcb.Protos;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>
/// <c>ifcb keys create|list|revoke</c>: the Registry's named API keys with roles (reader, writer, admin). Managing keys
/// needs an admin key, such as the platform's bootstrap key (IFCB_API_KEY).
/// </summary>
public static class KeysCommands
{
    public static Command Build(CliContext context) => new("keys", "Named API keys for the Registry, each with a role (admin only).")
    {
        Create(context),
        List(context),
        Revoke(context),
    };

    private static Command Create(CliContext context)
    {
        var name = new Argument<string>("NAME") { Description = "Key name, e.g. ci-bot; audit entries name it key:NAME." };
        var role = new Option<string>("--role")
        {
            Description = "reader: reads only; writer: also registers and changes models; admin: also manages keys.",
            Required = true,
        }.AcceptOnlyFromAmong([.. ApiRoles.Names]);
        var command = new Command("create", "Create a named key with a role; the key is printed once and never shown again.")
        {
            name, role,
        };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var created = await platform.Registry.CreateApiKeyAsync(
                new CreateApiKeyRequest { Name = parse.GetValue(name), Role = parse.GetValue(role) }, platform.Auth, cancellationToken: ct);
            context.Warn($"the key '{created.Info.Name}' is shown only now: store it (e.g. as a CI secret); the registry keeps only " +
                "its SHA-256.");
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(created);
            else
                context.Output.WriteLine(created.Key);
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command List(CliContext context)
    {
        var command = new Command("list", "List the named keys (never the keys themselves), revoked ones included.");
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var keys = (await platform.Registry.ListApiKeysAsync(new ListApiKeysRequest(), platform.Auth, cancellationToken: ct)).Keys;
            if (parse.GetValue(GlobalOptions.Json))
            {
                context.WriteJson(keys);
                return ExitCodes.Success;
            }
            var table = new Table().Border(TableBorder.Rounded)
                .AddColumns("name", "role", "created", "created by", "revoked", "revoked by");
            foreach (var key in keys)
            {
                table.AddRow(Markup.Escape(key.Name), key.Role, key.CreatedAt, Markup.Escape(key.CreatedBy), key.RevokedAt,
                    Markup.Escape(key.RevokedBy));
            }
            context.Console.Write(table);
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Revoke(CliContext context)
    {
        var name = new Argument<string>("NAME");
        var command = new Command("revoke", "Revoke a key: the next call with it is refused. Its name is never reused.") { name };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var revoked = await platform.Registry.RevokeApiKeyAsync(new RevokeApiKeyRequest { Name = parse.GetValue(name) }, platform.Auth,
                cancellationToken: ct);
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(revoked);
            else
                context.Console.MarkupLine(
                    Markup.Escape($"{revoked.Name} ({revoked.Role}) revoked at {revoked.RevokedAt} by {revoked.RevokedBy}"));
            return ExitCodes.Success;
        });
        return command;
    }
}
