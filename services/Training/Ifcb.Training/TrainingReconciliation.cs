using Ifcb.Contracts;
using Ifcb.Platform.Jobs;
using Ifcb.Training.Engine.Jobs;
using MassTransit;

namespace Ifcb.Training;

/// <summary>
/// The Training service's reconcilers (see <see cref="JobReconciler{T}"/>): training jobs (send TrainModel for jobs
/// never sent, requeue or fail jobs whose worker died, cancel past deadlines, send ModelTrained again until the
/// Registry answers) and RUN jobs (the same for RunModel).
/// </summary>
public sealed class TrainingReconciliation(
    TrainingJobStore jobs,
    RunJobStore runs,
    TrainingJobWork training,
    RunJobWork running,
    IBus bus,
    JobKernelOptions options,
    ILogger<TrainingReconciliation> logger)
{
    private readonly JobReconciler<TrainingJobRecord> _training = new(jobs, options,
        (job, ct) => bus.Publish(new TrainModel(job.JobId), ct), training.AnnounceEndAsync, training.SendModelTrainedAsync, logger);

    private readonly JobReconciler<RunJobRecord> _runs = new(runs, options,
        (run, ct) => bus.Publish(new RunModel(run.JobId), ct), running.AnnounceEndAsync, null, logger);

    public async Task SweepAsync(CancellationToken cancellationToken)
    {
        await _training.SweepAsync(cancellationToken);
        await _runs.SweepAsync(cancellationToken);
    }
}
