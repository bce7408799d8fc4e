using Grpc.Core;
using Ifcb.Contracts;
using Ifcb.Data.Bins;
using Ifcb.Data.Datasets;
using Ifcb.Models;
using Ifcb.Platform;
using Ifcb.Platform.Jobs;
using Ifcb.Protos;
using Ifcb.Training.Engine.Jobs;
using MassTransit;

namespace Ifcb.Training;

/// <summary>
/// The Runs gRPC API (protos/runs.proto): neuston's RUN as jobs on the Training workers, a thin adapter over the run
/// store, the Registry (to resolve the model reference once) and the bus.
/// </summary>
public sealed class RunsGrpcService(
    RunJobStore runs,
    BlobDatasetStore datasets,
    BlobBinSetStore binSets,
    RegistryCheckpoints registry,
    ISendEndpointProvider sender,
    JobKernelOptions jobOptions,
    ILogger<RunsGrpcService> logger) : Runs.RunsBase
{
    [RequiresApiKey]
    public override async Task<RunJob> StartRun(StartRunRequest request, ServerCallContext context)
    {
        ResourceName.ValidateModelName(request.RunId, "run_id");
        Limits.CheckText(request.Model, "model", 2 * ResourceName.MaxModelNameLength + 1);
        Limits.CheckText(request.Device, "device", 32);
        Limits.CheckText(request.FilterMode, "filter_mode", 8);
        Ifcb.Inference.InferenceEngines.Check(request.Engine, "engine");
        Limits.CheckList(request.Outfile, "outfile");
        Limits.CheckList(request.FilterKeywords, "filter_keywords");
        var priority = JobPriorities.Parse(request.Priority);
        if (request.Batch != 0)
            Limits.Check(request.Batch, 1, Limits.MaxBatch, "batch", nameof(Limits.MaxBatch));
        var hasBins = !string.IsNullOrWhiteSpace(request.BinSet);
        if (hasBins == !string.IsNullOrWhiteSpace(request.Dataset))
            throw IfcbException.InvalidArgument("Give exactly one input: bin_set (raw bins) or dataset (images).");
        if (request.Evaluate && hasBins)
            throw IfcbException.InvalidArgument("evaluate scores a labelled dataset (class folders); give dataset, not bin_set.");
        // Output patterns stay inside the run's folder: no absolute paths, no '..', no expansion that escapes.
        Ifcb.Inference.OutputPattern.ValidateAll(request.Outfile,
            hasBins ? Ifcb.Inference.RunInputType.Bin : Ifcb.Inference.RunInputType.Image);
        if (!string.IsNullOrEmpty(request.FilterMode))
            Ifcb.Inference.RunFilter.Parse(request.FilterMode, request.FilterKeywords);
        if (!hasBins)
            await datasets.DescribeAsync(request.Dataset, context.CancellationToken);
        var version = await registry.ResolveAsync(request.Model, context.CancellationToken);
        if (version.Status != VersionStatus.Ready)
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                $"{version.Name}/{version.Version} is {version.Status}, not READY."));
        var batch = request.Batch > 0 ? request.Batch : Defaults.BatchSize;
        var metadata = version.Metadata ?? new VersionMetadata();
        Limits.CheckBatch(batch, metadata.Resize > 0 ? metadata.Resize
            : ModelZoo.Architectures.Contains(metadata.Arch) ? ModelZoo.InputSize(metadata.Arch) : 299);

        var jobId = RunJobStore.NewId();
        // The bin set becomes this run's (a second run naming it gets FailedPrecondition); the run deletes it when it ends.
        if (hasBins)
            await binSets.ClaimAsync(request.BinSet, jobId, context.CancellationToken);
        var now = runs.Time.GetUtcNow();
        var run = new RunJobRecord
        {
            JobId = jobId,
            ModelVersion = version.ToModelRef(),
            ModelSha256 = version.CheckpointSha256,
            Request = new RunRequestSpec
            {
                Model = request.Model, RunId = request.RunId, BinSet = hasBins ? request.BinSet : null,
                Dataset = hasBins ? null : request.Dataset, OutputFiles = [.. request.Outfile], BatchSize = batch,
                FilterMode = string.IsNullOrEmpty(request.FilterMode) ? null : request.FilterMode,
                FilterKeywords = [.. request.FilterKeywords],
                Device = string.IsNullOrWhiteSpace(request.Device) ? "auto" : request.Device,
                Engine = string.IsNullOrWhiteSpace(request.Engine) ? Ifcb.Inference.InferenceEngines.Auto : request.Engine,
                Evaluate = request.Evaluate,
            },
            Priority = priority,
        }.WithDeadline(JobDeadlines.From(request.DeadlineSeconds, now), now);
        run = await runs.CreateAsync(run, context.CancellationToken);
        run = await JobDispatch.SendNewAsync(runs, run, ct => JobQueue.SendAsync(sender, run, ct), jobOptions, logger);
        return run.ToProto();
    }

    [ReadOnlyRpc]
    public override async Task<RunJob> GetRun(JobRef request, ServerCallContext context) =>
        (await RequireRunAsync(request.JobId, context.CancellationToken)).ToProto();

    [ReadOnlyRpc]
    public override Task WatchRun(JobRef request, IServerStreamWriter<RunJob> responseStream, ServerCallContext context) =>
        JobWatch.StreamUntilTerminalAsync(ct => RequireRunAsync(request.JobId, ct), j => j.UpdatedAt, j => j.IsTerminal, j => j.ToProto(),
            responseStream, context.CancellationToken);

    [RequiresApiKey]
    public override async Task<RunJob> CancelRun(JobRef request, ServerCallContext context)
    {
        await RequireRunAsync(request.JobId, context.CancellationToken);
        var (run, _) = await runs.UpdateAsync(request.JobId, r => r.IsTerminal || r.CancelRequested ? null
            : r.RequestCancel("cancelled by a user", runs.Time.GetUtcNow()), context.CancellationToken);
        return run.ToProto();
    }

    [ReadOnlyRpc]
    public override async Task<ListArtifactsReply> ListRunOutputs(JobRef request, ServerCallContext context)
    {
        await RequireRunAsync(request.JobId, context.CancellationToken);
        return await ArtifactStreaming.ListAsync(runs.Artifacts(request.JobId), context.CancellationToken);
    }

    [ReadOnlyRpc]
    public override async Task DownloadRunOutput(DownloadArtifactRequest request, IServerStreamWriter<DataChunk> responseStream,
        ServerCallContext context)
    {
        await RequireRunAsync(request.JobId, context.CancellationToken);
        await ArtifactStreaming.StreamArtifactAsync(runs.Artifacts(request.JobId), request, responseStream, context);
    }

    private async Task<RunJobRecord> RequireRunAsync(string jobId, CancellationToken cancellationToken) =>
        await runs.GetAsync(jobId, cancellationToken)
        ?? throw new RpcException(new Status(StatusCode.NotFound, $"No run '{jobId}'."));
}
