using System.Collections.Immutable;
using System.Globalization;
using System.Text.Json.Serialization;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>The kinds of event a webhook can ask for, as sent in <c>X-Ifcb-Event</c> and the payload's <c>event</c>.</summary>
public static class WebhookEventKinds
{
    /// <summary>A version became READY (registered and verified).</summary>
    public const string VersionRegistered = "version.registered";

    /// <summary>A version ended FAILED (upload failed or mismatched, or abandoned and expired).</summary>
    public const string VersionFailed = "version.failed";

    /// <summary>A training job's checkpoint will not be registered (the payload's reason says why).</summary>
    public const string RegistrationFailed = "registration.failed";

    public const string VersionDeleted = "version.deleted";

    /// <summary>An alias was created or moved.</summary>
    public const string AliasSet = "alias.set";

    public const string AliasDeleted = "alias.deleted";

    /// <summary>A model tag (no version in the payload) or version tag was set to a new value.</summary>
    public const string TagSet = "tag.set";

    public const string TagDeleted = "tag.deleted";

    /// <summary>Sent only by TestWebhook, whatever the webhook's filter.</summary>
    public const string Ping = "ping";

    /// <summary>The kinds a webhook may filter on (every kind but <see cref="Ping"/>).</summary>
    public static readonly ImmutableArray<string> Subscribable =
        [VersionRegistered, VersionFailed, RegistrationFailed, VersionDeleted, AliasSet, AliasDeleted, TagSet, TagDeleted];
}

/// <summary>A registered webhook, as stored in <c>webhooks/hooks/{id}.json</c>.</summary>
public sealed record Webhook
{
    /// <summary>16 lower-case hex digits.</summary>
    public required string Id { get; init; }

    /// <summary>Absolute http or https URL the deliveries are POSTed to.</summary>
    public required string Url { get; init; }

    /// <summary>The model whose events it receives; null for every model.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Model { get; init; }

    /// <summary>The event kinds it receives (<see cref="WebhookEventKinds"/>); empty for all.</summary>
    public ImmutableArray<string> Events { get; init; } = [];

    /// <summary>The HMAC key of the signatures. Stored as given; never returned by the API.</summary>
    public required string Secret { get; init; }

    public bool Active { get; init; } = true;

    public required DateTimeOffset CreatedAt { get; init; }

    public required string CreatedBy { get; init; }

    /// <summary>Whether an event of <paramref name="kind"/> about <paramref name="model"/> goes to this webhook.</summary>
    public bool Wants(string kind, string? model) =>
        Active && kind != WebhookEventKinds.Ping && (Model is null || Model == model) && (Events.IsDefaultOrEmpty || Events.Contains(kind));
}

/// <summary>What a caller asks for in CreateWebhook.</summary>
public sealed record NewWebhook(string Url, string? Model, IReadOnlyList<string> Events, string Secret);

/// <summary>A registry change to announce, before it is addressed to a webhook.</summary>
public sealed record WebhookEvent
{
    public required string Kind { get; init; }

    public string? Model { get; init; }

    public int? Version { get; init; }

    public string? Alias { get; init; }

    public int? PreviousVersion { get; init; }

    public string? TagKey { get; init; }

    public string? TagValue { get; init; }

    public string? Reason { get; init; }

    public string? TrainingJobId { get; init; }

    public string? Sha256 { get; init; }

    public required string Actor { get; init; }

    public required DateTimeOffset OccurredAt { get; init; }
}

public enum WebhookDeliveryStatus
{
    Pending,
    Delivered,
    Failed,
}

/// <summary>
/// One event addressed to one webhook, as stored in <c>webhooks/deliveries/{webhook}/{id}.json</c>: the exact body
/// every attempt sends, and what the attempts so far got.
/// </summary>
public sealed record WebhookDelivery
{
    /// <summary>19 digits of the event's UTC ticks, '-', 16 hex digits: listing order is event order.</summary>
    public required string Id { get; init; }

    public required string WebhookId { get; init; }

    public required string Event { get; init; }

    /// <summary>The JSON body, fixed when the delivery is created (retries send the same bytes).</summary>
    public required string Payload { get; init; }

    public required WebhookDeliveryStatus Status { get; init; }

    public int Attempts { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? LastStatusCode { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? LastError { get; init; }

    /// <summary>When the next attempt is due; null once DELIVERED or FAILED.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public DateTimeOffset? NextAttemptAt { get; init; }

    /// <summary>While in the future, an attempt is in flight on some replica (see <see cref="WebhookOptions.AttemptLease"/>).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public DateTimeOffset? LeasedUntil { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    public required DateTimeOffset UpdatedAt { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public DateTimeOffset? DeliveredAt { get; init; }

    /// <summary>Takes the delivery for one attempt until <paramref name="until"/>; null when it is not due or is taken.</summary>
    public WebhookDelivery? Lease(DateTimeOffset now, DateTimeOffset until) =>
        Status != WebhookDeliveryStatus.Pending || NextAttemptAt > now || LeasedUntil > now
            ? null
            : this with { LeasedUntil = until, UpdatedAt = now };

    /// <summary>
    /// Records one attempt: DELIVERED on success; otherwise PENDING again after the retry delay, or FAILED once
    /// <see cref="WebhookOptions.MaxAttempts"/> are spent. Null when the delivery was already settled.
    /// </summary>
    public WebhookDelivery? Record(WebhookAttemptResult result, WebhookOptions options, DateTimeOffset now)
    {
        if (Status != WebhookDeliveryStatus.Pending)
            return null;

        var attempts = Attempts + 1;
        var status = result.Delivered ? WebhookDeliveryStatus.Delivered
            : attempts >= options.MaxAttempts ? WebhookDeliveryStatus.Failed
            : WebhookDeliveryStatus.Pending;
        return this with
        {
            Attempts = attempts,
            Status = status,
            LastStatusCode = result.StatusCode,
            LastError = result.Delivered ? null : result.Error,
            NextAttemptAt = status == WebhookDeliveryStatus.Pending ? now + options.RetryDelay(attempts) : null,
            LeasedUntil = null,
            UpdatedAt = now,
            DeliveredAt = result.Delivered ? now : null,
        };
    }
}

/// <summary>What one POST got: a 2xx status is delivered; anything else (another status, a timeout, no connection) is not.</summary>
public sealed record WebhookAttemptResult(int? StatusCode, string? Error)
{
    public bool Delivered => StatusCode is >= 200 and < 300;
}

/// <summary>A delivery leased for one attempt, with the webhook (secret included) it goes to.</summary>
public sealed record WebhookAttempt(Webhook Webhook, WebhookDelivery Delivery);

/// <summary>
/// The sweep's marker of a delivery that still has an attempt to make, <c>webhooks/due/{webhook}/{delivery}.json</c>;
/// its blob metadata carries when (Unix milliseconds), so the sweep lists markers without reading them.
/// </summary>
internal sealed record DueMarker(string WebhookId, string DeliveryId, DateTimeOffset DueAt) : IListedMetadata
{
    public const string DueAtKey = "due_at_ms";

    [JsonIgnore]
    public IDictionary<string, string> ListedMetadata => new Dictionary<string, string>
    {
        [DueAtKey] = DueAt.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture),
    };

    public static DateTimeOffset? DueAtOf(IDictionary<string, string> metadata) =>
        metadata.TryGetValue(DueAtKey, out var text) && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var ms)
            ? DateTimeOffset.FromUnixTimeMilliseconds(ms)
            : null;
}
