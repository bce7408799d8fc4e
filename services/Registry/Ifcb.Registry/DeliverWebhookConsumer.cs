using Ifcb.Contracts;
using Ifcb.Registry.Engine;
using MassTransit;

namespace Ifcb.Registry;

/// <summary>
/// Makes one attempt of a webhook delivery: leases it (so no other replica sends the same attempt), POSTs it, records
/// the outcome. A failed attempt is retried by <see cref="WebhookSweeper"/> once its backoff has passed; a command for a
/// delivery that is not due (a repeat, or one the sweep sent while another replica holds it) does nothing.
/// </summary>
public sealed class DeliverWebhookConsumer(RegistryWebhooks webhooks, WebhookSender sender, ILogger<DeliverWebhookConsumer> logger)
    : IConsumer<DeliverWebhook>
{
    public async Task Consume(ConsumeContext<DeliverWebhook> context)
    {
        var (webhookId, deliveryId) = (context.Message.WebhookId, context.Message.DeliveryId);
        if (await webhooks.TryStartAttemptAsync(webhookId, deliveryId, context.CancellationToken) is not { } attempt)
            return;

        var result = await sender.SendAsync(attempt, context.CancellationToken);
        // Recorded even if the consumer is being stopped: the attempt was made.
        var delivery = await webhooks.RecordAttemptAsync(attempt, result, CancellationToken.None);
        if (delivery is null)
            logger.LogInformation("Webhook {WebhookId} was deleted during delivery {DeliveryId}", webhookId, deliveryId);
        else if (delivery.Status == WebhookDeliveryStatus.Failed)
            logger.LogWarning("Webhook {WebhookId} delivery {DeliveryId} ({Event}) failed after {Attempts} attempts: {Error}",
                webhookId, deliveryId, delivery.Event, delivery.Attempts, delivery.LastError);
        else if (delivery.Status == WebhookDeliveryStatus.Pending)
            logger.LogInformation(
                "Webhook {WebhookId} delivery {DeliveryId} attempt {Attempts} failed ({Error}); next at {NextAttemptAt:O}",
                webhookId, deliveryId, delivery.Attempts, delivery.LastError, delivery.NextAttemptAt);
    }
}

/// <summary>
/// Queue settings beside the consumer: its own endpoint (so a slow webhook never holds up model registration), and
/// enough concurrent attempts that one endpoint that never answers does not hold up the others.
/// </summary>
public sealed class DeliverWebhookConsumerDefinition : ConsumerDefinition<DeliverWebhookConsumer>
{
    public const int ConcurrentAttempts = 16;

    public DeliverWebhookConsumerDefinition() => ConcurrentMessageLimit = ConcurrentAttempts;

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpointConfigurator,
        IConsumerConfigurator<DeliverWebhookConsumer> consumerConfigurator, IRegistrationContext context) =>
        endpointConfigurator.PrefetchCount = ConcurrentAttempts;
}
