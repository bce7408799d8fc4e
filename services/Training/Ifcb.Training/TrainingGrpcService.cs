using Grpc.Core;
using Ifcb.Contracts;
using Ifcb.Data.Datasets;
using Ifcb.Models;
using Ifcb.Models.Weights;
using Ifcb.Platform.Jobs;
using Ifcb.Protos;
using Ifcb.Training.Engine;
using Ifcb.Training.Engine.Jobs;
using MassTransit;

namespace Ifcb.Training;

/// <summary>The Training gRPC API (protos/training.proto): training jobs, a thin adapter over the job store and the bus.</summary>
public sealed class TrainingGrpcService(
    ServiceIdentity identity,
    TrainingJobStore jobs,
    BlobDatasetStore datasets,
    IWeightsStore weights,
    RegistryCheckpoints registry,
    IPublishEndpoint bus,
    ISendEndpointProvider sender,
    IConfiguration configuration,
    JobKernelOptions jobOptions,
    ILogger<TrainingGrpcService> logger) : Ifcb.Protos.Training.TrainingBase
{
    [ReadOnlyRpc]
    public override Task<ServiceInfo> GetInfo(GetInfoRequest request, ServerCallContext context) =>
        Task.FromResult(identity.ToServiceInfo(new Dictionary<string, string>
        {
            ["architectures"] = string.Join(",", ModelZoo.Architectures),
            ["torch_device_auto"] = DeviceSelection.Resolve("auto").type.ToString(),
            // environment | in-process | glibc-defaults: how much of NativeAllocator's malloc tuning is in effect.
            ["malloc"] = NativeAllocator.Settings,
            // Peers' gRPC addresses from service discovery, so a client that knows Training can find the others.
            ["normstats_url"] = configuration["services:normstats:grpc:0"] ?? "",
            ["registry_url"] = configuration["services:registry:grpc:0"] ?? "",
        }));

    [RequiresApiKey]
    public override async Task<TrainingJob> StartTraining(StartTrainingRequest request, ServerCallContext context)
    {
        var seed = TrainingPreparation.ResolveSeed(request.Seed);
        var spec = request.ToSpec(seed);
        // Every name, number and string is checked here, so a job that is accepted never fails later on its input
        // (ArgumentException and IfcbException become InvalidArgument in the ErrorInterceptor).
        var options = spec.Validate();
        var priority = JobPriorities.Parse(request.Priority);
        var dataset = await datasets.DescribeAsync(spec.Dataset, context.CancellationToken);
        options.ClassWeights.CheckClasses(TrainingPreparation.TrainedClasses(dataset.CountPerClass, options));

        if (spec.From is { } from)
        {
            // Resolved now, so a moving alias cannot change what the job starts from; recorded as the new version's parent.
            var parent = await registry.ResolveAsync(from, context.CancellationToken);
            if (parent.Status != VersionStatus.Ready)
            {
                throw Ifcb.Platform.IfcbException.FailedPrecondition(
                    $"from: {parent.Name}/{parent.Version} is {parent.Status}, not READY.");
            }
            if (parent.Metadata?.Arch is { } arch && arch != spec.Architecture)
            {
                throw Ifcb.Platform.IfcbException.InvalidArgument(
                    $"from: {parent.Name}/{parent.Version} is a {arch} model; it cannot start a {spec.Architecture} run.");
            }
            spec = spec with { FromVersion = $"{parent.Name}/{parent.Version}" };
        }
        else if (spec.Pretrained && !await HasPretrainedWeightsAsync(spec.Architecture, context.CancellationToken))
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                new WeightsNotFoundException(spec.Architecture,
                    string.Join(" or ", PretrainedWeights.FileNames(spec.Architecture).Select(weights.Describe))).Message));

        var now = jobs.Time.GetUtcNow();
        var job = new TrainingJobRecord
        {
            JobId = TrainingJobStore.NewId(),
            Request = spec,
            DatasetFingerprint = dataset.Fingerprint,
            Priority = priority,
        }.WithDeadline(JobDeadlines.From(request.DeadlineSeconds, now), now);
        job = await jobs.CreateAsync(job, context.CancellationToken);
        job = await JobDispatch.SendNewAsync(jobs, job, ct => JobQueue.SendAsync(sender, job, ct), jobOptions, logger);
        logger.LogInformation("Queued training job {JobId}: {Model} on {Dataset} ({Images} images)", job.JobId, spec.Architecture,
            spec.Dataset, dataset.FileCount);
        return job.ToProto();
    }

    [ReadOnlyRpc]
    public override async Task<TrainingJob> GetJob(JobRef request, ServerCallContext context) =>
        (await RequireJobAsync(request.JobId, context.CancellationToken)).ToProto();

    [ReadOnlyRpc]
    public override Task WatchJob(JobRef request, IServerStreamWriter<TrainingJob> responseStream, ServerCallContext context) =>
        JobWatch.StreamUntilTerminalAsync(ct => RequireJobAsync(request.JobId, ct), j => j.UpdatedAt, j => j.IsTerminal, j => j.ToProto(),
            responseStream, context.CancellationToken);

    [ReadOnlyRpc]
    public override async Task<ListJobsReply> ListJobs(ListJobsRequest request, ServerCallContext context)
    {
        var pageSize = request.PageSize switch { <= 0 => 50, > 1000 => 1000, var n => n };
        var offset = 0;
        if (!string.IsNullOrEmpty(request.PageToken) && (!int.TryParse(request.PageToken, out offset) || offset < 0))
            throw new RpcException(new Status(StatusCode.InvalidArgument, "page_token is not one this service returned."));
        var state = request.State.ToState();
        var all = (await jobs.ListAsync(context.CancellationToken)).Where(j => state is null || j.State == state).ToList();
        var reply = new ListJobsReply();
        reply.Jobs.AddRange(all.Skip(offset).Take(pageSize).Select(j => j.ToProto()));
        if (offset + pageSize < all.Count)
            reply.NextPageToken = (offset + pageSize).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return reply;
    }

    [RequiresApiKey]
    public override async Task<TrainingJob> CancelJob(JobRef request, ServerCallContext context)
    {
        await RequireJobAsync(request.JobId, context.CancellationToken);
        var (job, changed) = await jobs.UpdateAsync(request.JobId, j => j.IsTerminal || j.CancelRequested ? null
            : j.RequestCancel("cancelled by a user", jobs.Time.GetUtcNow()), context.CancellationToken);
        if (changed && job.State == Ifcb.Platform.Jobs.JobState.Cancelled)
            await bus.Publish(new TrainingCancelled(job.JobId, 0), context.CancellationToken);
        return job.ToProto();
    }

    [ReadOnlyRpc]
    public override async Task<ListArtifactsReply> ListArtifacts(JobRef request, ServerCallContext context)
    {
        await RequireJobAsync(request.JobId, context.CancellationToken);
        return await ArtifactStreaming.ListAsync(jobs.Artifacts(request.JobId), context.CancellationToken);
    }

    [ReadOnlyRpc]
    public override async Task DownloadArtifact(DownloadArtifactRequest request, IServerStreamWriter<DataChunk> responseStream,
        ServerCallContext context)
    {
        await RequireJobAsync(request.JobId, context.CancellationToken);
        await ArtifactStreaming.StreamArtifactAsync(jobs.Artifacts(request.JobId), request, responseStream, context);
    }

    private async Task<TrainingJobRecord> RequireJobAsync(string jobId, CancellationToken cancellationToken) =>
        await jobs.GetAsync(jobId, cancellationToken)
        ?? throw new RpcException(new Status(StatusCode.NotFound, $"No training job '{jobId}'; see ListJobs."));

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
