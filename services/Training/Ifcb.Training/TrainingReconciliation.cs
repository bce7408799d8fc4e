using Ifcb.Data.Bins;
using Ifcb.Data.Datasets;
using Ifcb.Platform.Jobs;
using Ifcb.Training.Engine.Jobs;
using MassTransit;

namespace Ifcb.Training;

/// <summary>
/// The Training service's reconcilers (see <see cref="JobReconciler{T}"/>): training jobs (send TrainModel for jobs
/// never sent, requeue or fail jobs whose worker died, cancel past deadlines, send ModelTrained again until the
/// Registry answers), RUN jobs (the same for RunModel) and sweeps (finished when their trials have ended, their
/// winner registered).
/// </summary>
public sealed class TrainingReconciliation(
    TrainingJobStore jobs,
    RunJobStore runs,
    TrainingJobWork training,
    RunJobWork running,
    BlobDatasetStore datasets,
    BlobBinSetStore binSets,
    SweepCoordinator sweeps,
    IBus bus,
    JobKernelOptions options,
    TimeProvider time,
    ILogger<TrainingReconciliation> logger)
{
    /// <summary>How often the sweep also collects retired dataset generations and bin sets no run claimed.</summary>
    private static readonly TimeSpan GarbageInterval = TimeSpan.FromMinutes(15);

    /// <summary>An uploaded bin set that no run claimed within this time is deleted.</summary>
    public static readonly TimeSpan UnclaimedBinSetAge = TimeSpan.FromHours(24);

    private DateTimeOffset _lastGarbageCollection = DateTimeOffset.MinValue;

    private readonly JobReconciler<TrainingJobRecord> _training = new(jobs, options,
        (job, ct) => JobQueue.SendAsync(bus, job, ct), training.AnnounceEndAsync, training.SendModelTrainedAsync, logger);

    private readonly JobReconciler<RunJobRecord> _runs = new(runs, options,
        (run, ct) => JobQueue.SendAsync(bus, run, ct), running.AnnounceEndAsync, running.ReleaseBinSetAsync, logger);

    public async Task SweepAsync(CancellationToken cancellationToken)
    {
        await _training.SweepAsync(cancellationToken);
        await _runs.SweepAsync(cancellationToken);
        await sweeps.AdvanceActiveAsync(cancellationToken);
        if (time.GetUtcNow() - _lastGarbageCollection >= GarbageInterval)
        {
            _lastGarbageCollection = time.GetUtcNow();
            var generations = await datasets.CollectGarbageAsync(cancellationToken);
            var sets = await binSets.DeleteUnclaimedOlderThanAsync(UnclaimedBinSetAge, cancellationToken);
            if (generations + sets > 0)
            {
                logger.LogInformation("Garbage collection: {Blobs} dataset blobs and {Sets} unclaimed bin-set blobs deleted",
                    generations, sets);
            }
        }
    }
}
