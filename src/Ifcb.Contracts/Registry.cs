namespace Ifcb.Contracts;

/// <summary>Event: a model version became READY in the registry.</summary>
public sealed record ModelVersionRegistered(string Model, int Version, string? SourceTrainingJob, string Sha256, string Actor);

/// <summary>
/// Event: an alias now points at <paramref name="Version"/> (null when deleted); <paramref name="PreviousVersion"/>
/// before.
/// </summary>
public sealed record ModelAliasChanged(string Model, string Alias, int? Version, int? PreviousVersion, string Actor);

/// <summary>Event: a model version and its blobs were deleted.</summary>
public sealed record ModelVersionDeleted(string Model, int Version, string Actor);

/// <summary>
/// Event: the checkpoint of training job <paramref name="JobId"/> will not be registered as <paramref name="Model"/>,
/// for a reason that retrying the same <c>ModelTrained</c> cannot fix (the name breaks the registry's rules, the
/// checkpoint is missing, larger than the registry accepts, corrupt, or contradicts the job's metadata). Published in
/// place of <see cref="ModelVersionRegistered"/>; <paramref name="Reason"/> is one line, safe to show to the user.
/// Transient failures (storage or broker down) are not announced: the registry retries those.
/// </summary>
public sealed record ModelRegistrationFailed(string JobId, string Model, string Reason);

/// <summary>
/// Event: a model version ended FAILED (its upload failed, did not match its declaration, or was abandoned and expired);
/// <paramref name="Reason"/> is the version's status message.
/// </summary>
public sealed record ModelVersionFailed(string Model, int Version, string Reason, string Actor);

/// <summary>
/// Event: a tag changed on a model (<paramref name="Version"/> null) or on a version. <paramref name="Value"/> is the new
/// value, null when the tag was deleted. Setting a tag to its current value or deleting an absent one announces nothing.
/// </summary>
public sealed record ModelTagChanged(string Model, int? Version, string Key, string? Value, string Actor);

/// <summary>
/// Command: make the next attempt of webhook delivery <paramref name="DeliveryId"/> of webhook <paramref name="WebhookId"/>
/// if it is due (the delivery record decides; a stale or repeated command does nothing).
/// </summary>
public sealed record DeliverWebhook(string WebhookId, string DeliveryId);
