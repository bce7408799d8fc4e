using Grpc.Core;
using Ifcb.Contracts;
using Ifcb.Data.Datasets;
using Ifcb.Models.Weights;
using Ifcb.Platform;
using Ifcb.Platform.Jobs;
using Ifcb.Protos;
using Ifcb.Training.Engine;
using Ifcb.Training.Engine.Jobs;
using MassTransit;

namespace Ifcb.Training;

/// <summary>
/// The one way a training job enters the system: checked (<see cref="PrepareAsync"/>), stored and sent to the workers
/// (<see cref="SubmitAsync(TrainingJobRecord, CancellationToken)"/>); and the one way a job is asked to stop
/// (<see cref="CancelAsync"/>). StartTraining and sweep trials both go through here.
/// </summary>
public sealed class TrainingSubmissions(
    TrainingJobStore jobs,
    BlobDatasetStore datasets,
    IWeightsStore weights,
    RegistryCheckpoints registry,
    IBus bus,
    JobKernelOptions jobOptions,
    ILogger<TrainingSubmissions> logger)
{
    /// <summary>Checks and stores a request and sends it to the workers (StartTraining).</summary>
    public async Task<TrainingJobRecord> SubmitAsync(StartTrainingRequest request, CancellationToken cancellationToken) =>
        await SubmitAsync(await PrepareAsync(request, null, null, cancellationToken), cancellationToken);

    /// <summary>
    /// Checks everything about a request up front, so a job that is accepted never fails later on its input, and
    /// returns the job it becomes (not stored yet).
    /// </summary>
    /// <param name="amend">Adds what a caller other than StartTraining records on the spec (a sweep: its id).</param>
    /// <param name="jobId">The job's id; null = a new one.</param>
    /// <exception cref="IfcbException">
    /// InvalidArgument (via ArgumentException too), NotFound (dataset), FailedPrecondition (parent version not READY).
    /// </exception>
    /// <exception cref="RpcException">FailedPrecondition: pretrained weights missing.</exception>
    public async Task<TrainingJobRecord> PrepareAsync(StartTrainingRequest request, Func<TrainingRequestSpec, TrainingRequestSpec>? amend,
        string? jobId, CancellationToken cancellationToken)
    {
        var seed = TrainingPreparation.ResolveSeed(request.Seed);
        var spec = request.ToSpec(seed);
        if (amend is not null)
            spec = amend(spec);
        // Every name, number and string is checked here, so a job that is accepted never fails later on its input
        // (ArgumentException and IfcbException become InvalidArgument in the ErrorInterceptor).
        var options = spec.Validate();
        var priority = JobPriorities.Parse(request.Priority);
        var dataset = await datasets.DescribeAsync(spec.Dataset, cancellationToken);
        options.ClassWeights.CheckClasses(TrainingPreparation.TrainedClasses(dataset.CountPerClass, options));

        if (spec.From is { } from)
        {
            // Resolved now, so a moving alias cannot change what the job starts from; recorded as the new version's parent.
            var parent = await registry.ResolveAsync(from, cancellationToken);
            if (parent.Status != VersionStatus.Ready)
            {
                throw IfcbException.FailedPrecondition(
                    $"from: {parent.Name}/{parent.Version} is {parent.Status}, not READY.");
            }
            if (parent.Metadata?.Arch is { } arch && arch != spec.Architecture)
            {
                throw IfcbException.InvalidArgument(
                    $"from: {parent.Name}/{parent.Version} is a {arch} model; it cannot start a {spec.Architecture} run.");
            }
            spec = spec with { FromVersion = $"{parent.Name}/{parent.Version}" };
        }
        else if (spec.Pretrained && !await HasPretrainedWeightsAsync(spec.Architecture, cancellationToken))
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                new WeightsNotFoundException(spec.Architecture,
                    string.Join(" or ", PretrainedWeights.FileNames(spec.Architecture).Select(weights.Describe))).Message));

        var now = jobs.Time.GetUtcNow();
        return new TrainingJobRecord
        {
            JobId = jobId ?? TrainingJobStore.NewId(),
            Request = spec,
            DatasetFingerprint = dataset.Fingerprint,
            Priority = priority,
        }.WithDeadline(JobDeadlines.From(request.DeadlineSeconds, now), now);
    }

    /// <summary>
    /// Stores a prepared job (state QUEUED) and sends TrainModel to the job queue with its priority (see
    /// <see cref="JobQueue"/>; if the broker is down, the reconciler sends it).
    /// </summary>
    /// <exception cref="IfcbException">AlreadyExists: a job with this id is stored.</exception>
    public async Task<TrainingJobRecord> SubmitAsync(TrainingJobRecord prepared, CancellationToken cancellationToken)
    {
        var job = await jobs.CreateAsync(prepared, cancellationToken);
        job = await JobDispatch.SendNewAsync(jobs, job, ct => JobQueue.SendAsync(bus, job, ct), jobOptions, logger);
        logger.LogInformation("Queued training job {JobId}: {Model} on {Dataset}", job.JobId, job.Request.Architecture,
            job.Request.Dataset);
        return job;
    }

    /// <summary>
    /// Asks a job to stop: a QUEUED job is cancelled at once, a RUNNING one stops within a batch; an ended job is
    /// returned unchanged.
    /// </summary>
    /// <exception cref="IfcbException">NotFound: no such job.</exception>
    public async Task<TrainingJobRecord> CancelAsync(string jobId, string reason, CancellationToken cancellationToken)
    {
        var (job, changed) = await jobs.UpdateAsync(jobId, j => j.IsTerminal || j.CancelRequested ? null
            : j.RequestCancel(reason, jobs.Time.GetUtcNow()), cancellationToken);
        if (changed && job.State == Ifcb.Platform.Jobs.JobState.Cancelled)
            await bus.Publish(new TrainingCancelled(job.JobId, 0), cancellationToken);
        return job;
    }

    private async Task<bool> HasPretrainedWeightsAsync(string architecture, CancellationToken cancellationToken)
    {
        foreach (var file in PretrainedWeights.FileNames(architecture))
        {
            await using var stream = await weights.OpenReadAsync(file, cancellationToken);
            if (stream is not null)
                return true;
        }
        return false;
    }
}
