using System.Security.Cryptography;
using Grpc.Core;
using Ifcb.Client;
using Ifcb.Contracts;
using Ifcb.Data.Bins;
using Ifcb.Data.Datasets;
using Ifcb.Models;
using Ifcb.Models.Weights;
using Ifcb.Platform;
using Ifcb.Platform.Jobs;
using Ifcb.Protos;
using Ifcb.Training.Engine;
using Ifcb.Training.Engine.Jobs;
using MassTransit;
using Microsoft.Extensions.Hosting;

namespace Ifcb.Training;

/// <summary>The Training gRPC API (protos/training.proto): a thin adapter over the job store and the bus.</summary>
public sealed class TrainingGrpcService(
    ServiceIdentity identity,
    TrainingJobStore jobs,
    RunJobStore runs,
    BlobDatasetStore datasets,
    BlobBinSetStore binSets,
    RegistryCheckpoints registry,
    IWeightsStore weights,
    IPublishEndpoint bus,
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
        spec.Validate();
        var dataset = await datasets.DescribeAsync(spec.Dataset, context.CancellationToken);

        if (spec.Pretrained && !await HasPretrainedWeightsAsync(spec.Architecture, context.CancellationToken))
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                new WeightsNotFoundException(spec.Architecture,
                    string.Join(" or ", PretrainedWeights.FileNames(spec.Architecture).Select(weights.Describe))).Message));

        var now = jobs.Time.GetUtcNow();
        var job = new TrainingJobRecord
        {
            JobId = TrainingJobStore.NewId(),
            Request = spec,
            DatasetFingerprint = dataset.Fingerprint,
        }.WithDeadline(DeadlineFrom(request.DeadlineSeconds, now), now);
        job = await jobs.CreateAsync(job, context.CancellationToken);
        job = await JobDispatch.SendNewAsync(jobs, job, ct => bus.Publish(new TrainModel(job.JobId), ct), jobOptions, logger);
        logger.LogInformation("Queued training job {JobId}: {Model} on {Dataset} ({Images} images)", job.JobId, spec.Architecture,
            spec.Dataset, dataset.FileCount);
        return job.ToProto();
    }

    /// <summary>A request's deadline_seconds as an absolute time (null for 0); bounded by Limits.MaxJobDeadline.</summary>
    private static DateTimeOffset? DeadlineFrom(long seconds, DateTimeOffset now) => seconds switch
    {
        0 => null,
        < 0 or > 30L * 24 * 3600 => throw IfcbException.InvalidArgument(
            $"deadline_seconds is {seconds}; give 1 to {(long)Limits.MaxJobDeadline.TotalSeconds} seconds, or 0 for none (limit {nameof(Limits.MaxJobDeadline)})."),
        _ => now.AddSeconds(seconds),
    };

    [ReadOnlyRpc]
    public override async Task<TrainingJob> GetJob(GetJobRequest request, ServerCallContext context) =>
        (await RequireJobAsync(request.JobId, context.CancellationToken)).ToProto();

    [ReadOnlyRpc]
    public override Task WatchJob(GetJobRequest request, IServerStreamWriter<TrainingJob> responseStream, ServerCallContext context) =>
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
    public override async Task<TrainingJob> CancelJob(GetJobRequest request, ServerCallContext context)
    {
        await RequireJobAsync(request.JobId, context.CancellationToken);
        var (job, changed) = await jobs.UpdateAsync(request.JobId, j => j.IsTerminal || j.CancelRequested ? null
            : j.RequestCancel("cancelled by a user", jobs.Time.GetUtcNow()), context.CancellationToken);
        if (changed && job.State == Ifcb.Platform.Jobs.JobState.Cancelled)
            await bus.Publish(new TrainingCancelled(job.JobId, 0), context.CancellationToken);
        return job.ToProto();
    }

    [ReadOnlyRpc]
    public override async Task<ListArtifactsReply> ListArtifacts(GetJobRequest request, ServerCallContext context)
    {
        await RequireJobAsync(request.JobId, context.CancellationToken);
        return await ListAsync(jobs.Artifacts(request.JobId), context.CancellationToken);
    }

    [ReadOnlyRpc]
    public override async Task DownloadArtifact(DownloadArtifactRequest request, IServerStreamWriter<DataChunk> responseStream,
        ServerCallContext context)
    {
        await RequireJobAsync(request.JobId, context.CancellationToken);
        await StreamArtifactAsync(jobs.Artifacts(request.JobId), request, responseStream, context);
    }

    [RequiresApiKey]
    public override async Task<RunJob> StartRun(StartRunRequest request, ServerCallContext context)
    {
        ResourceName.ValidateModelName(request.RunId, "run_id");
        Limits.CheckText(request.Model, "model", 2 * ResourceName.MaxModelNameLength + 1);
        Limits.CheckText(request.Device, "device", 32);
        Limits.CheckText(request.FilterMode, "filter_mode", 8);
        Limits.CheckList(request.Outfile, "outfile");
        Limits.CheckList(request.FilterKeywords, "filter_keywords");
        if (request.Batch != 0)
            Limits.Check(request.Batch, 1, Limits.MaxBatch, "batch", nameof(Limits.MaxBatch));
        var hasBins = !string.IsNullOrWhiteSpace(request.BinSet);
        if (hasBins == !string.IsNullOrWhiteSpace(request.Dataset))
            throw IfcbException.InvalidArgument("Give exactly one input: bin_set (raw bins) or dataset (images).");
        // Output patterns stay inside the run's folder: no absolute paths, no '..', no expansion that escapes.
        Ifcb.Inference.OutputPattern.ValidateAll(request.Outfile, hasBins ? Ifcb.Inference.RunInputType.Bin : Ifcb.Inference.RunInputType.Image);
        if (!string.IsNullOrEmpty(request.FilterMode))
            Ifcb.Inference.RunFilter.Parse(request.FilterMode, request.FilterKeywords);
        if (!hasBins)
            await datasets.DescribeAsync(request.Dataset, context.CancellationToken);
        var version = await registry.ResolveAsync(request.Model, context.CancellationToken);
        if (version.Status != VersionStatus.Ready)
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"{version.Name}/{version.Version} is {version.Status}, not READY."));
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
            Request = new RunRequestSpec
            {
                Model = request.Model, RunId = request.RunId, BinSet = hasBins ? request.BinSet : null, Dataset = hasBins ? null : request.Dataset,
                OutputFiles = [.. request.Outfile], BatchSize = batch,
                FilterMode = string.IsNullOrEmpty(request.FilterMode) ? null : request.FilterMode, FilterKeywords = [.. request.FilterKeywords],
                Device = string.IsNullOrWhiteSpace(request.Device) ? "auto" : request.Device,
            },
        }.WithDeadline(DeadlineFrom(request.DeadlineSeconds, now), now);
        run = await runs.CreateAsync(run, context.CancellationToken);
        run = await JobDispatch.SendNewAsync(runs, run, ct => bus.Publish(new RunModel(run.JobId), ct), jobOptions, logger);
        return run.ToProto();
    }

    [ReadOnlyRpc]
    public override async Task<RunJob> GetRun(GetJobRequest request, ServerCallContext context) =>
        (await RequireRunAsync(request.JobId, context.CancellationToken)).ToProto();

    [ReadOnlyRpc]
    public override Task WatchRun(GetJobRequest request, IServerStreamWriter<RunJob> responseStream, ServerCallContext context) =>
        JobWatch.StreamUntilTerminalAsync(ct => RequireRunAsync(request.JobId, ct), j => j.UpdatedAt, j => j.IsTerminal, j => j.ToProto(),
            responseStream, context.CancellationToken);

    [RequiresApiKey]
    public override async Task<RunJob> CancelRun(GetJobRequest request, ServerCallContext context)
    {
        await RequireRunAsync(request.JobId, context.CancellationToken);
        var (run, _) = await runs.UpdateAsync(request.JobId, r => r.IsTerminal || r.CancelRequested ? null
            : r.RequestCancel("cancelled by a user", runs.Time.GetUtcNow()), context.CancellationToken);
        return run.ToProto();
    }

    [ReadOnlyRpc]
    public override async Task<ListArtifactsReply> ListRunOutputs(GetJobRequest request, ServerCallContext context)
    {
        await RequireRunAsync(request.JobId, context.CancellationToken);
        return await ListAsync(runs.Artifacts(request.JobId), context.CancellationToken);
    }

    private static async Task<ListArtifactsReply> ListAsync(BlobArtifactSink artifacts, CancellationToken cancellationToken)
    {
        var reply = new ListArtifactsReply();
        await foreach (var (name, size) in artifacts.ListAsync(cancellationToken))
            reply.Artifacts.Add(new Artifact { Name = name, Size = size, ContentType = ContentType(name) });
        return reply;
    }

    [ReadOnlyRpc]
    public override async Task DownloadRunOutput(DownloadArtifactRequest request, IServerStreamWriter<DataChunk> responseStream,
        ServerCallContext context)
    {
        await RequireRunAsync(request.JobId, context.CancellationToken);
        await StreamArtifactAsync(runs.Artifacts(request.JobId), request, responseStream, context);
    }

    private async Task<RunJobRecord> RequireRunAsync(string jobId, CancellationToken cancellationToken) =>
        await runs.GetAsync(jobId, cancellationToken)
        ?? throw new RpcException(new Status(StatusCode.NotFound, $"No run '{jobId}'."));

    private static async Task StreamArtifactAsync(BlobArtifactSink artifacts, DownloadArtifactRequest request,
        IServerStreamWriter<DataChunk> responseStream, ServerCallContext context)
    {
        if (string.IsNullOrWhiteSpace(request.Name) || request.Name.Contains("..", StringComparison.Ordinal) || request.Name.StartsWith('/'))
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"Artifact name '{request.Name}' is not valid; use a name from the listing."));
        var blob = artifacts.Blob(request.Name);
        if (!await blob.ExistsAsync(context.CancellationToken))
            throw new RpcException(new Status(StatusCode.NotFound, $"Job {request.JobId} has no file '{request.Name}'; see the listing."));
        await BlobStreaming.StreamAsync(blob, responseStream, context.CancellationToken);
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

    private static string ContentType(string name) => Path.GetExtension(name) switch
    {
        ".png" => "image/png",
        ".json" => "application/json",
        ".csv" => "text/csv",
        ".list" => "text/plain",
        _ => "application/octet-stream",
    };
}

/// <summary>Streams a blob as gRPC chunks: total size on the first, SHA-256 on the last.</summary>
internal static class BlobStreaming
{
    public const int ChunkSize = 256 * 1024;

    public static async Task StreamAsync(Azure.Storage.Blobs.BlobClient blob, IServerStreamWriter<DataChunk> stream, CancellationToken cancellationToken)
    {
        var download = await blob.DownloadStreamingAsync(cancellationToken: cancellationToken);
        await using var content = download.Value.Content;
        var total = download.Value.Details.ContentLength;
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[ChunkSize];
        var first = true;
        int read;
        var pending = (DataChunk?)null;
        while ((read = await content.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken)) > 0)
        {
            sha.AppendData(buffer, 0, read);
            if (pending is not null)
                await stream.WriteAsync(pending, cancellationToken);
            pending = new DataChunk { Data = Google.Protobuf.ByteString.CopyFrom(buffer, 0, read) };
            if (first)
            {
                pending.TotalSize = total;
                first = false;
            }
        }
        pending ??= new DataChunk { TotalSize = 0 };
        pending.Sha256 = Convert.ToHexStringLower(sha.GetHashAndReset());
        await stream.WriteAsync(pending, cancellationToken);
    }
}
