using System.CommandLine;
using System.Globalization;
using Ifcb.Protos;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>
/// <c>ifcb models webhooks add|list|remove|test|deliveries</c>: HTTP callbacks on registry events (protos/registry.proto,
/// "Webhooks", says what is sent and how it is signed).
/// </summary>
public static class ModelsWebhooksCommand
{
    /// <summary>Where <c>add</c> reads the secret when <c>--secret</c> is not given (keeps it out of shell history).</summary>
    public const string SecretVariable = "IFCB_WEBHOOK_SECRET";

    public static Command Build(CliContext context) =>
        new("webhooks", "HTTP webhooks on registry events: signed POSTs, retried with backoff, every attempt recorded.")
        {
            BuildAdd(context), BuildList(context), BuildRemove(context), BuildTest(context), BuildDeliveries(context),
        };

    private static Command BuildAdd(CliContext context)
    {
        var url = new Argument<string>("URL") { Description = "Absolute http:// or https:// URL the events are POSTed to." };
        var model = new Option<string?>("--model") { Description = "Only this model's events (default: every model)." };
        var events = new Option<string?>("--events")
        {
            Description = "Comma-separated event kinds (default: all): version.registered, version.failed, registration.failed, " +
                "version.deleted, alias.set, alias.deleted, tag.set, tag.deleted.",
        };
        var secret = new Option<string?>("--secret")
        {
            Description = $"HMAC-SHA256 key of X-Ifcb-Signature, 16..1024 characters (default: ${SecretVariable}). Never shown again.",
        };
        var command = new Command("add", "Register a webhook.") { url, model, events, secret };
        command.SetHandler(context, async (parse, ct) =>
        {
            var key = parse.GetValue(secret) ?? Environment.GetEnvironmentVariable(SecretVariable)
                ?? throw new UsageException($"models webhooks add needs --secret SECRET (or ${SecretVariable}).");
            var request = new CreateWebhookRequest { Url = parse.GetValue(url), Model = parse.GetValue(model) ?? "", Secret = key };
            request.Events.Add(
                (parse.GetValue(events) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            using var platform = PlatformConnection.From(parse, context);
            var webhook = await platform.Registry.CreateWebhookAsync(request, platform.Auth, cancellationToken: ct);
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(webhook);
            else
                context.Console.MarkupLine(Markup.Escape($"webhook {webhook.Id} → {webhook.Url} ({Scope(webhook)})"));
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command BuildList(CliContext context)
    {
        var command = new Command("list", "List the webhooks (their secrets are never shown).");
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var webhooks = (await platform.Registry.ListWebhooksAsync(new ListWebhooksRequest(), platform.Auth, cancellationToken: ct))
                .Webhooks;
            if (parse.GetValue(GlobalOptions.Json))
            {
                context.WriteJson(webhooks);
                return ExitCodes.Success;
            }
            var table = new Table().Border(TableBorder.Rounded).AddColumns("id", "url", "scope", "secret set", "created");
            foreach (var w in webhooks)
                table.AddRow(w.Id, Markup.Escape(w.Url), Markup.Escape(Scope(w)), w.SecretSet ? "yes" : "no", w.CreatedAt);
            context.Console.Write(table);
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command BuildRemove(CliContext context)
    {
        var id = new Argument<string>("ID");
        var command = new Command("remove", "Delete a webhook, its delivery records and its pending retries.") { id };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var webhook = await platform.Registry.DeleteWebhookAsync(new WebhookRef { Id = parse.GetValue(id) }, platform.Auth,
                cancellationToken: ct);
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(webhook);
            else
                context.Console.MarkupLine(Markup.Escape($"webhook {webhook.Id} removed"));
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command BuildTest(CliContext context)
    {
        var id = new Argument<string>("ID");
        var command = new Command("test", "Send a signed \"ping\" event to the webhook (follow it with `deliveries ID`).") { id };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var delivery = await platform.Registry.TestWebhookAsync(new WebhookRef { Id = parse.GetValue(id) }, platform.Auth,
                cancellationToken: ct);
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(delivery);
            else
                context.Console.MarkupLine(Markup.Escape($"ping queued as delivery {delivery.Id}"));
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command BuildDeliveries(CliContext context)
    {
        var id = new Argument<string>("ID");
        var limit = new Option<int>("--limit")
        {
            Description = "At most this many deliveries, newest first.", DefaultValueFactory = _ => 20,
        };
        var command = new Command("deliveries", "The webhook's deliveries: event, status, attempts, last answer.") { id, limit };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var deliveries = (await platform.Registry.ListWebhookDeliveriesAsync(new ListWebhookDeliveriesRequest
            {
                Id = parse.GetValue(id), PageSize = Math.Clamp(parse.GetValue(limit), 1, 1000),
            }, platform.Auth, cancellationToken: ct)).Deliveries;
            if (parse.GetValue(GlobalOptions.Json))
            {
                context.WriteJson(deliveries);
                return ExitCodes.Success;
            }
            var table = new Table().Border(TableBorder.Rounded)
                .AddColumns("delivery", "event", "status", "attempts", "last status", "last error", "next attempt");
            foreach (var d in deliveries)
            {
                table.AddRow(d.Id, d.Event, d.Status.ToString().ToUpperInvariant(), d.Attempts.ToString(CultureInfo.InvariantCulture),
                    d.LastStatusCode == 0 ? "" : d.LastStatusCode.ToString(CultureInfo.InvariantCulture), Markup.Escape(d.LastError),
                    d.NextAttemptAt);
            }
            context.Console.Write(table);
            return ExitCodes.Success;
        });
        return command;
    }

    private static string Scope(Webhook webhook) =>
        (webhook.Model.Length == 0 ? "every model" : $"model {webhook.Model}") + ", " +
        (webhook.Events.Count == 0 ? "all events" : string.Join(",", webhook.Events));
}
