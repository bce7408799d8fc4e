using Ifcb.Platform;
using Ifcb.Registry.Engine;

namespace Ifcb.Registry;

/// <summary>
/// Expires abandoned uploads: every <see cref="RegistryLimits.PendingSweepInterval"/> (and once at start-up) it turns
/// versions left PENDING by a registry that died mid-upload into FAILED, so their idempotency keys may be retried even
/// if nobody reads them, and announces each (<see cref="RegistryEvents.VersionFailedAsync"/>). Every replica runs one; the
/// engine's ETag-guarded writes make concurrent sweeps harmless (only the replica that expired a version announces it).
/// </summary>
public sealed class PendingVersionSweeper(ModelRegistry registry, RegistryLimits limits, IServiceScopeFactory scopes,
    ILogger<PendingVersionSweeper> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(limits.PendingSweepInterval);
        try
        {
            do
            {
                await SweepOnceAsync(stoppingToken);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
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
            foreach (var version in await registry.ExpireStalePendingAsync(stoppingToken))
            {
                logger.LogWarning(
                    "Expired abandoned upload {Model}/{Version} (PENDING since {CreatedAt:O}, by {CreatedBy}, " +
                    "idempotency key {IdempotencyKey}, training job {TrainingJobId}): {Reason}",
                    version.ModelName, version.Version, version.CreatedAt, version.CreatedBy,
                    version.IdempotencyKey ?? "none", version.Source.TrainingJobId ?? "none", version.StatusMessage);
                await using var scope = scopes.CreateAsyncScope();
                await scope.ServiceProvider.GetRequiredService<RegistryEvents>().VersionFailedAsync(version, ModelRegistry.SystemActor);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException && Faults.IsTransient(e))
        {
            logger.LogWarning("Sweep for abandoned uploads skipped, storage is unavailable: {Reason}", Faults.Reason(e));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A sweep that fails must not stop later ones (or the service): log it and try again next interval.
            logger.LogError(e, "Sweep for abandoned uploads failed");
        }
    }
}
