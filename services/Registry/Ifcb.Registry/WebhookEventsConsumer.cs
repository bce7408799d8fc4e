using Ifcb.Contracts;
using Ifcb.Registry.Engine;
using MassTransit;

namespace Ifcb.Registry;

/// <summary>
/// Turns the registry's own bus events into webhook deliveries: one delivery record per webhook that wants the event,
/// then a <see cref="DeliverWebhook"/> command for each, so the POSTs happen on <see cref="DeliverWebhookConsumer"/>'s
/// endpoint and no RPC (nor this consumer) waits for an endpoint. Deliveries are keyed by the message id, so a
/// redelivered event does not create a second delivery.
/// </summary>
public sealed class WebhookEventsConsumer(RegistryWebhooks webhooks) :
    IConsumer<ModelVersionRegistered>, IConsumer<ModelVersionFailed>, IConsumer<ModelRegistrationFailed>,
    IConsumer<ModelVersionDeleted>, IConsumer<ModelAliasChanged>, IConsumer<ModelTagChanged>
{
    public Task Consume(ConsumeContext<ModelVersionRegistered> context) => EnqueueAsync(context, new WebhookEvent
    {
        Kind = WebhookEventKinds.VersionRegistered, Model = context.Message.Model, Version = context.Message.Version,
        TrainingJobId = context.Message.SourceTrainingJob, Sha256 = context.Message.Sha256, Actor = context.Message.Actor,
        OccurredAt = OccurredAt(context),
    });

    public Task Consume(ConsumeContext<ModelVersionFailed> context) => EnqueueAsync(context, new WebhookEvent
    {
        Kind = WebhookEventKinds.VersionFailed, Model = context.Message.Model, Version = context.Message.Version,
        Reason = context.Message.Reason, Actor = context.Message.Actor, OccurredAt = OccurredAt(context),
    });

    public Task Consume(ConsumeContext<ModelRegistrationFailed> context) => EnqueueAsync(context, new WebhookEvent
    {
        Kind = WebhookEventKinds.RegistrationFailed, Model = context.Message.Model, TrainingJobId = context.Message.JobId,
        Reason = context.Message.Reason, Actor = ModelTrainedConsumer.Actor, OccurredAt = OccurredAt(context),
    });

    public Task Consume(ConsumeContext<ModelVersionDeleted> context) => EnqueueAsync(context, new WebhookEvent
    {
        Kind = WebhookEventKinds.VersionDeleted, Model = context.Message.Model, Version = context.Message.Version,
        Actor = context.Message.Actor, OccurredAt = OccurredAt(context),
    });

    public Task Consume(ConsumeContext<ModelAliasChanged> context) => EnqueueAsync(context, new WebhookEvent
    {
        Kind = context.Message.Version is null ? WebhookEventKinds.AliasDeleted : WebhookEventKinds.AliasSet,
        Model = context.Message.Model, Alias = context.Message.Alias, Version = context.Message.Version,
        PreviousVersion = context.Message.PreviousVersion, Actor = context.Message.Actor, OccurredAt = OccurredAt(context),
    });

    public Task Consume(ConsumeContext<ModelTagChanged> context) => EnqueueAsync(context, new WebhookEvent
    {
        Kind = context.Message.Value is null ? WebhookEventKinds.TagDeleted : WebhookEventKinds.TagSet,
        Model = context.Message.Model, Version = context.Message.Version, TagKey = context.Message.Key, TagValue = context.Message.Value,
        Actor = context.Message.Actor, OccurredAt = OccurredAt(context),
    });

    /// <summary>When the event was published: the same on every redelivery, so the delivery ids are too.</summary>
    private static DateTimeOffset OccurredAt(ConsumeContext context) =>
        context.SentTime is { } sent ? new DateTimeOffset(DateTime.SpecifyKind(sent, DateTimeKind.Utc)) : DateTimeOffset.UtcNow;

    private async Task EnqueueAsync(ConsumeContext context, WebhookEvent @event)
    {
        var deliveries = await webhooks.EnqueueAsync(@event, context.MessageId?.ToString(), context.CancellationToken);
        foreach (var delivery in deliveries)
            await context.Publish(new DeliverWebhook(delivery.WebhookId, delivery.Id), context.CancellationToken);
    }
}
