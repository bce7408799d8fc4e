using Ifcb.Contracts;
using Ifcb.Platform;
using Ifcb.Registry.Engine;
using MassTransit;

namespace Ifcb.Registry;

/// <summary>
/// The due-time half of webhook retries (RabbitMQ here has no delayed messages): every
/// <see cref="WebhookOptions.SweepInterval"/> it sends <see cref="DeliverWebhook"/> for each delivery whose next attempt
/// is due, including those whose replica died mid-attempt (once their lease ran out). Every replica runs one; the
/// delivery's lease makes the duplicate commands harmless. About once an hour it also deletes old delivery records.
/// </summary>
public sealed class WebhookSweeper(RegistryWebhooks webhooks, IBus bus, ILogger<WebhookSweeper> logger) : BackgroundService
{
    private static readonly TimeSpan PruneInterval = TimeSpan.FromHours(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(webhooks.Options.SweepInterval);
        var lastPrune = DateTimeOffset.MinValue;
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await SweepOnceAsync(stoppingToken);
                if (DateTimeOffset.UtcNow - lastPrune > PruneInterval)
                {
                    lastPrune = DateTimeOffset.UtcNow;
                    await PruneAsync(stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down.
        }
    }

    private async Task SweepOnceAsync(CancellationToken stoppingToken)
    {
        try
        {
            var due = await webhooks.DueAsync(stoppingToken);
            if (due.Count > 0)
                await bus.PublishBatch(due.Select(d => new DeliverWebhook(d.WebhookId, d.DeliveryId)), stoppingToken);
        }
        catch (Exception e) when (e is not OperationCanceledException && Faults.IsTransient(e))
        {
            logger.LogWarning("Webhook sweep skipped, storage or broker is unavailable: {Reason}", Faults.Reason(e));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A sweep that fails must not stop later ones (or the service).
            logger.LogError(e, "Webhook sweep failed");
        }
    }

    private async Task PruneAsync(CancellationToken stoppingToken)
    {
        try
        {
            if (await webhooks.PruneAsync(stoppingToken) is > 0 and var pruned)
                logger.LogInformation("Deleted {Count} webhook delivery records past their retention", pruned);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning("Pruning webhook deliveries failed: {Reason}", Faults.Reason(e));
        }
    }
}
