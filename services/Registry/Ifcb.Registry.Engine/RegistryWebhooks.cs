using System.Collections.Immutable;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Azure.Storage.Blobs;
using Ifcb.Platform;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>
/// HTTP webhooks on registry events, kept in the registry's container (see <see cref="RegistryLayout"/>): the webhooks,
/// one delivery record per event and webhook, and a due marker per delivery that still has an attempt to make. This
/// class decides what is sent, to whom and when; the host sends it (one POST per <see cref="TryStartAttemptAsync"/>)
/// and reports back (<see cref="RecordAttemptAsync"/>). Attempts are leased with ETag-guarded writes, so replicas that
/// race for the same delivery never send the same attempt twice.
/// </summary>
public sealed partial class RegistryWebhooks
{
    public const int MaxUrlLength = 2048;
    public const int MinSecretLength = 16;
    public const int MaxSecretLength = 1024;

    /// <summary>Longest free text (a failure reason) copied into a payload; longer text is cut, so a payload stays small.</summary>
    public const int MaxPayloadTextLength = 2000;

    private static readonly JsonSerializerOptions PayloadJson = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    private readonly BlobDocumentStore _store;
    private readonly WebhookOptions _options;
    private readonly TimeProvider _time;

    public RegistryWebhooks(BlobContainerClient container, WebhookOptions? options = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(container);
        _options = (options ?? new WebhookOptions()).Validated();
        _time = timeProvider ?? TimeProvider.System;
        _store = RegistryStore.Create(container, new RegistryOptions());
    }

    public WebhookOptions Options => _options;

    [GeneratedRegex("^[0-9a-f]{16}$")]
    private static partial Regex WebhookIdPattern();

    [GeneratedRegex("^[0-9]{19}-[0-9a-f]{16}$")]
    private static partial Regex DeliveryIdPattern();

    // ----- Webhooks -----

    /// <summary>
    /// Registers a webhook. InvalidArgument for a URL that is not absolute http(s) (or carries credentials), an unknown
    /// event kind, a malformed model name or a secret outside 16..1024 characters; ResourceExhausted past
    /// <see cref="WebhookOptions.MaxWebhooks"/>. The model need not exist yet.
    /// </summary>
    public async Task<Webhook> CreateAsync(NewWebhook request, string actor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var url = ValidUrl(request.Url);
        if (request.Model is not null)
            RegistryValidation.ModelName(request.Model);
        var events = ValidEvents(request.Events);
        ValidSecret(request.Secret);
        RegistryValidation.Actor(actor);

        var count = (await _store.ListBlobNamesAsync(RegistryLayout.WebhooksPrefix, cancellationToken)).Count;
        if (count >= _options.MaxWebhooks)
        {
            throw new IfcbException(ErrorKind.ResourceExhausted, string.Create(CultureInfo.InvariantCulture,
                $"The registry has {count} webhooks, its limit (Ifcb:Webhooks:MaxWebhooks); delete one you no longer need first."));
        }

        var webhook = new Webhook
        {
            Id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)), Url = url, Model = request.Model, Events = events,
            Secret = request.Secret, CreatedAt = _time.GetUtcNow(), CreatedBy = actor,
        };
        if (await _store.TryCreateAsync(RegistryLayout.Webhook(webhook.Id), webhook, cancellationToken) is null)
            throw IfcbException.Aborted("A webhook id collided with an existing one; create the webhook again.");
        return webhook;
    }

    /// <summary>Every webhook, oldest first (there are at most <see cref="WebhookOptions.MaxWebhooks"/>).</summary>
    public async Task<IReadOnlyList<Webhook>> ListAsync(CancellationToken cancellationToken = default)
    {
        var names = await _store.ListBlobNamesAsync(RegistryLayout.WebhooksPrefix, cancellationToken);
        var webhooks = new List<Webhook>(names.Count);
        foreach (var batch in names.Chunk(16))
        {
            var read = await Task.WhenAll(batch.Select(name => _store.ReadAsync<Webhook>(name, cancellationToken)));
            webhooks.AddRange(read.Where(w => w is not null).Select(w => w!.Value));
        }
        return [.. webhooks.OrderBy(w => w.CreatedAt).ThenBy(w => w.Id, StringComparer.Ordinal)];
    }

    /// <summary>NotFound when there is no webhook <paramref name="id"/>.</summary>
    public async Task<Webhook> GetAsync(string id, CancellationToken cancellationToken = default) =>
        (await _store.ReadAsync<Webhook>(RegistryLayout.Webhook(ValidWebhookId(id)), cancellationToken))?.Value
        ?? throw NoWebhook(id);

    /// <summary>
    /// Deletes the webhook, its pending attempts and its delivery records, and returns it. NotFound when there is none.
    /// An attempt already in flight still completes; nothing is sent after it.
    /// </summary>
    public async Task<Webhook> DeleteAsync(string id, CancellationToken cancellationToken = default)
    {
        var webhook = await GetAsync(id, cancellationToken);
        await _store.DeleteAsync(RegistryLayout.Webhook(id), cancellationToken);
        foreach (var prefix in new[] { RegistryLayout.DueMarkersPrefix + id + "/", RegistryLayout.DeliveriesPrefix(id) })
        {
            foreach (var batch in (await _store.ListBlobNamesAsync(prefix, cancellationToken)).Chunk(16))
                await Task.WhenAll(batch.Select(name => _store.DeleteAsync(name, cancellationToken)));
        }
        return webhook;
    }

    /// <summary>The webhooks that want an event of <paramref name="kind"/> about <paramref name="model"/>.</summary>
    public static IReadOnlyList<Webhook> Matching(IEnumerable<Webhook> webhooks, string kind, string? model) =>
        [.. webhooks.Where(w => w.Wants(kind, model))];

    // ----- Deliveries -----

    /// <summary>
    /// Creates a delivery of <paramref name="event"/> for every webhook that wants it, each due at once, and returns
    /// them. With <paramref name="deduplicationKey"/> (e.g. the bus message id) a repeat creates nothing new and returns
    /// the deliveries that are still pending, so a redelivered event is not sent twice.
    /// </summary>
    public async Task<IReadOnlyList<WebhookDelivery>> EnqueueAsync(WebhookEvent @event, string? deduplicationKey,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(@event);
        var deliveries = new List<WebhookDelivery>();
        foreach (var webhook in Matching(await ListAsync(cancellationToken), @event.Kind, @event.Model))
        {
            if (await EnqueueAsync(webhook, @event, deduplicationKey, cancellationToken) is { Status: WebhookDeliveryStatus.Pending } d)
                deliveries.Add(d);
        }
        return deliveries;
    }

    /// <summary>A <see cref="WebhookEventKinds.Ping"/> delivery to webhook <paramref name="id"/>, whatever its filter. NotFound.</summary>
    public async Task<WebhookDelivery> PingAsync(string id, string actor, CancellationToken cancellationToken = default)
    {
        var webhook = await GetAsync(id, cancellationToken);
        var ping = new WebhookEvent
        {
            Kind = WebhookEventKinds.Ping, Model = webhook.Model, Actor = actor, OccurredAt = _time.GetUtcNow(),
        };
        return await EnqueueAsync(webhook, ping, null, cancellationToken);
    }

    private async Task<WebhookDelivery> EnqueueAsync(Webhook webhook, WebhookEvent @event, string? deduplicationKey,
        CancellationToken cancellationToken)
    {
        var suffix = deduplicationKey is null
            ? Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))
            : Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(deduplicationKey + "/" + webhook.Id)))[..16];
        var id = @event.OccurredAt.UtcTicks.ToString("D19", CultureInfo.InvariantCulture) + "-" + suffix;
        var now = _time.GetUtcNow();
        var delivery = new WebhookDelivery
        {
            Id = id, WebhookId = webhook.Id, Event = @event.Kind, Payload = Payload(@event, webhook.Id, id),
            Status = WebhookDeliveryStatus.Pending, NextAttemptAt = now, CreatedAt = now, UpdatedAt = now,
        };
        var name = RegistryLayout.Delivery(webhook.Id, id);
        if (await _store.TryCreateAsync(name, delivery, cancellationToken) is null)
        {
            // A repeat of the same event: the first enqueue may have died before its marker, so make sure of it.
            delivery = (await _store.ReadAsync<WebhookDelivery>(name, cancellationToken))?.Value ?? delivery;
            if (delivery.Status != WebhookDeliveryStatus.Pending)
                return delivery;
        }
        await MarkDueAsync(delivery, delivery.NextAttemptAt ?? now, cancellationToken);
        return delivery;
    }

    /// <summary>The JSON body of a delivery: the event's fields (absent when they do not apply), its delivery and webhook ids.</summary>
    private static string Payload(WebhookEvent e, string webhookId, string deliveryId) => JsonSerializer.Serialize(new WebhookPayload(
        e.Kind, deliveryId, webhookId, e.OccurredAt, e.Model, e.Version, e.Alias, e.PreviousVersion, e.TagKey, Cut(e.TagValue),
        Cut(e.Reason), e.TrainingJobId, e.Sha256, e.Actor), PayloadJson);

    private static string? Cut(string? text) => text is { Length: > MaxPayloadTextLength } ? text[..MaxPayloadTextLength] : text;

    private sealed record WebhookPayload(string Event, string DeliveryId, string WebhookId, DateTimeOffset OccurredAt, string? Model,
        int? Version, string? Alias, int? PreviousVersion, string? TagKey, string? TagValue, string? Reason, string? TrainingJobId,
        string? Sha256, string Actor);

    /// <summary>
    /// Takes delivery <paramref name="deliveryId"/> for one attempt if it is due and nobody holds it, and returns it with
    /// its webhook; null otherwise (settled, not yet due, in flight elsewhere, or its webhook was deleted).
    /// </summary>
    public async Task<WebhookAttempt?> TryStartAttemptAsync(string webhookId, string deliveryId,
        CancellationToken cancellationToken = default)
    {
        ValidWebhookId(webhookId);
        ValidDeliveryId(deliveryId);
        var name = RegistryLayout.Delivery(webhookId, deliveryId);
        var stored = await _store.ReadAsync<WebhookDelivery>(name, cancellationToken);
        var webhook = await _store.ReadAsync<Webhook>(RegistryLayout.Webhook(webhookId), cancellationToken);
        if (stored is null || webhook is null || stored.Value.Status != WebhookDeliveryStatus.Pending)
        {
            await _store.DeleteAsync(RegistryLayout.DueMarker(webhookId, deliveryId), cancellationToken);
            return null;
        }

        var now = _time.GetUtcNow();
        if (stored.Value.Lease(now, now + _options.AttemptLease) is not { } leased
            || await _store.TryReplaceAsync(name, leased, stored.ETag, cancellationToken) is null)
            return null;

        // The sweep looks again only once the lease has run out (the attempt's replica died).
        await MarkDueAsync(leased, leased.LeasedUntil!.Value, cancellationToken);
        return new WebhookAttempt(webhook.Value, leased);
    }

    /// <summary>
    /// Records what the attempt got (see <see cref="WebhookDelivery.Record"/>); returns the delivery as it now stands, or
    /// null when it was deleted meanwhile (with its webhook).
    /// </summary>
    public async Task<WebhookDelivery?> RecordAttemptAsync(WebhookAttempt attempt, WebhookAttemptResult result,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(attempt);
        ArgumentNullException.ThrowIfNull(result);
        var delivery = attempt.Delivery;
        var recorded = result with { Error = Cut(result.Error) };
        var name = RegistryLayout.Delivery(delivery.WebhookId, delivery.Id);
        if (await _store.ReadAsync<WebhookDelivery>(name, cancellationToken) is null)
            return null;

        WebhookDelivery now;
        try
        {
            now = (await _store.UpdateAsync<WebhookDelivery>(name, current => current.Record(recorded, _options, _time.GetUtcNow()),
                () => IfcbException.NotFound($"Delivery {delivery.Id} of webhook {delivery.WebhookId} was deleted."),
                cancellationToken)).Document.Value;
        }
        catch (IfcbException e) when (e.Kind == ErrorKind.NotFound)
        {
            return null;
        }

        if (now.Status == WebhookDeliveryStatus.Pending && now.NextAttemptAt is { } next)
            await MarkDueAsync(now, next, cancellationToken);
        else
            await _store.DeleteAsync(RegistryLayout.DueMarker(now.WebhookId, now.Id), cancellationToken);
        return now;
    }

    /// <summary>Deliveries whose next attempt is due now, by their markers (one listing, no document reads).</summary>
    public async Task<IReadOnlyList<(string WebhookId, string DeliveryId)>> DueAsync(CancellationToken cancellationToken = default)
    {
        var now = _time.GetUtcNow();
        return [.. (await _store.ListBlobsAsync(RegistryLayout.DueMarkersPrefix, withMetadata: true, cancellationToken))
            .Where(marker => DueMarker.DueAtOf(marker.Metadata) is not { } dueAt || dueAt <= now)
            .Select(marker => RegistryLayout.ParseDueMarker(marker.Name))
            .OfType<(string, string)>()];
    }

    /// <summary>Deletes delivery records untouched for <see cref="WebhookOptions.DeliveryRetention"/>; returns how many.</summary>
    public async Task<int> PruneAsync(CancellationToken cancellationToken = default)
    {
        var cutoff = _time.GetUtcNow() - _options.DeliveryRetention;
        var old = new List<string>();
        await foreach (var (name, lastModified) in _store.ListAsync("webhooks/deliveries/", cancellationToken))
        {
            if (lastModified < cutoff)
                old.Add(name);
        }
        foreach (var batch in old.Chunk(16))
            await Task.WhenAll(batch.Select(name => _store.DeleteAsync(name, cancellationToken)));
        return old.Count;
    }

    /// <summary>One page of the webhook's deliveries, newest first. NotFound when there is no such webhook.</summary>
    public async Task<Page<WebhookDelivery>> ListDeliveriesAsync(string webhookId, int pageSize = 100, string? pageToken = null,
        CancellationToken cancellationToken = default)
    {
        RegistryValidation.PageSize(pageSize);
        await GetAsync(webhookId, cancellationToken);
        var query = "deliveries:" + webhookId;
        var before = PageTokens.Decode<string>(pageToken, query);
        var names = (await _store.ListBlobNamesAsync(RegistryLayout.DeliveriesPrefix(webhookId), cancellationToken))
            .Where(name => before is null || string.CompareOrdinal(name, before) < 0)
            .Reverse()
            .ToList();
        var selected = names.Take(pageSize).ToList();
        var deliveries = new List<WebhookDelivery>(selected.Count);
        foreach (var batch in selected.Chunk(16))
        {
            var read = await Task.WhenAll(batch.Select(name => _store.ReadAsync<WebhookDelivery>(name, cancellationToken)));
            deliveries.AddRange(read.Where(d => d is not null).Select(d => d!.Value));
        }
        return new Page<WebhookDelivery>(deliveries, names.Count > selected.Count ? PageTokens.Encode(selected[^1], query) : null);
    }

    /// <summary>One delivery. NotFound when the webhook or the delivery does not exist.</summary>
    public async Task<WebhookDelivery> GetDeliveryAsync(string webhookId, string deliveryId, CancellationToken cancellationToken = default)
    {
        ValidWebhookId(webhookId);
        ValidDeliveryId(deliveryId);
        return (await _store.ReadAsync<WebhookDelivery>(RegistryLayout.Delivery(webhookId, deliveryId), cancellationToken))?.Value
            ?? throw IfcbException.NotFound($"Webhook {webhookId} has no delivery {deliveryId}; list them with ListWebhookDeliveries.");
    }

    private Task MarkDueAsync(WebhookDelivery delivery, DateTimeOffset dueAt, CancellationToken cancellationToken) =>
        _store.PutAsync(RegistryLayout.DueMarker(delivery.WebhookId, delivery.Id), new DueMarker(delivery.WebhookId, delivery.Id, dueAt),
            cancellationToken);

    // ----- Validation -----

    /// <summary>An absolute http or https URL without credentials, at most <see cref="MaxUrlLength"/> characters.</summary>
    public static string ValidUrl(string? url)
    {
        if (string.IsNullOrWhiteSpace(url))
            throw IfcbException.InvalidArgument("A webhook needs a url: an absolute http:// or https:// URL.");
        if (url.Length > MaxUrlLength)
            throw IfcbException.InvalidArgument($"The webhook url has {url.Length} characters; the limit is {MaxUrlLength}.");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw IfcbException.InvalidArgument($"The webhook url '{url}' is not an absolute http:// or https:// URL.");
        if (uri.UserInfo.Length > 0)
        {
            throw IfcbException.InvalidArgument(
                "The webhook url carries credentials (user:password@); remove them: the signature authenticates deliveries.");
        }
        return url;
    }

    /// <summary>Known kinds, each once; empty means all.</summary>
    public static ImmutableArray<string> ValidEvents(IReadOnlyList<string>? events)
    {
        if (events is null || events.Count == 0)
            return [];
        Limits.CheckList(events, "events", WebhookEventKinds.Subscribable.Length * 2, 64);
        foreach (var kind in events)
        {
            if (!WebhookEventKinds.Subscribable.Contains(kind))
            {
                throw IfcbException.InvalidArgument(
                    $"Unknown webhook event '{kind}'; use any of {string.Join(", ", WebhookEventKinds.Subscribable)} (none = all).");
            }
        }
        return [.. events.Distinct(StringComparer.Ordinal)];
    }

    public static void ValidSecret(string? secret)
    {
        if (secret is null || secret.Length < MinSecretLength || secret.Length > MaxSecretLength)
        {
            var length = (secret?.Length ?? 0).ToString(CultureInfo.InvariantCulture);
            throw IfcbException.InvalidArgument($"A webhook secret must have {MinSecretLength} to {MaxSecretLength} characters " +
                $"(it has {length}); use a random string, e.g. `openssl rand -hex 32`.");
        }
    }

    private static string ValidWebhookId(string? id) =>
        id is not null && WebhookIdPattern().IsMatch(id)
            ? id
            : throw IfcbException.InvalidArgument($"'{id}' is not a webhook id (16 hex digits, as CreateWebhook and ListWebhooks show).");

    private static string ValidDeliveryId(string? id) =>
        id is not null && DeliveryIdPattern().IsMatch(id)
            ? id
            : throw IfcbException.InvalidArgument($"'{id}' is not a webhook delivery id (as ListWebhookDeliveries shows).");

    private static IfcbException NoWebhook(string id) =>
        IfcbException.NotFound($"There is no webhook {id}; ListWebhooks shows the registered ones.");
}
