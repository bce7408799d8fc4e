using Ifcb.Contracts;
using Ifcb.Registry.Engine;
using MassTransit;

namespace Ifcb.Registry;

/// <summary>
/// Announces registry changes on the bus (the platform's webhooks), after the change is stored. Delivery is
/// at least once: a repeated registration (same idempotency key) announces its READY version again, so a consumer
/// that missed the first announcement (a crash between storing and publishing) still hears of it.
/// </summary>
public sealed class RegistryEvents(IPublishEndpoint bus)
{
    /// <summary>
    /// Publishes <see cref="ModelVersionRegistered"/> when the version is READY (an idempotent repeat may find it PENDING).
    /// </summary>
    public Task VersionRegisteredAsync(ModelVersion version, string actor, CancellationToken cancellationToken) =>
        version.Status == ModelVersionStatus.Ready
            ? bus.Publish(
                new ModelVersionRegistered(version.ModelName, version.Version, version.Source.TrainingJobId, version.Sha256, actor),
                cancellationToken)
            : Task.CompletedTask;

    /// <summary>Publishes <see cref="ModelRegistrationFailed"/>: a training job's checkpoint will not be registered, and why.</summary>
    public Task RegistrationFailedAsync(string jobId, string model, string reason, CancellationToken cancellationToken) =>
        bus.Publish(new ModelRegistrationFailed(jobId, model, reason), cancellationToken);

    /// <summary>
    /// Publishes <see cref="ModelVersionFailed"/> for a version a registration or the expiry sweep left FAILED. Not
    /// cancellable: a registration usually fails because its call was cancelled or broke, and the event must still go.
    /// </summary>
    public Task VersionFailedAsync(ModelVersion failed, string actor) =>
        bus.Publish(new ModelVersionFailed(failed.ModelName, failed.Version, failed.StatusMessage ?? "", actor), CancellationToken.None);

    /// <summary>
    /// Publishes <see cref="ModelTagChanged"/> if the tag really changed (<paramref name="version"/> null for a model tag,
    /// <paramref name="value"/> null for a deletion).
    /// </summary>
    public Task TagChangedAsync(string model, int? version, string key, string? value, bool changed, string actor,
        CancellationToken cancellationToken) =>
        changed ? bus.Publish(new ModelTagChanged(model, version, key, value, actor), cancellationToken) : Task.CompletedTask;

    /// <summary>Sends the command that makes the first attempt of a new webhook delivery (a ping).</summary>
    public Task DeliveryDueAsync(WebhookDelivery delivery, CancellationToken cancellationToken) =>
        bus.Publish(new DeliverWebhook(delivery.WebhookId, delivery.Id), cancellationToken);

    /// <summary>Publishes <see cref="ModelAliasChanged"/> if the alias really moved (setting it to where it was changes nothing).</summary>
    public Task AliasChangedAsync(AliasChange change, string actor, CancellationToken cancellationToken) =>
        change.Changed
            ? bus.Publish(new ModelAliasChanged(change.Model.Name, change.Alias, change.Version, change.PreviousVersion, actor),
                cancellationToken)
            : Task.CompletedTask;

    /// <summary>The version's deletion, preceded by the removal of any alias a forced delete took with it.</summary>
    public async Task VersionDeletedAsync(ModelVersion deleted, string actor, CancellationToken cancellationToken)
    {
        foreach (var alias in deleted.Aliases)
            await bus.Publish(new ModelAliasChanged(deleted.ModelName, alias, null, deleted.Version, actor), cancellationToken);
        await bus.Publish(new ModelVersionDeleted(deleted.ModelName, deleted.Version, actor), cancellationToken);
    }

    /// <summary>A deleted model's aliases and versions go with it; each is announced as if deleted one by one.</summary>
    public async Task ModelDeletedAsync(ModelDeletion deletion, string actor, CancellationToken cancellationToken)
    {
        foreach (var (alias, version) in deletion.Model.Aliases)
            await bus.Publish(new ModelAliasChanged(deletion.Model.Name, alias, null, version, actor), cancellationToken);
        foreach (var version in deletion.DeletedVersions)
            await bus.Publish(new ModelVersionDeleted(deletion.Model.Name, version, actor), cancellationToken);
    }
}
