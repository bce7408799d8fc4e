using System.Security.Cryptography;
using Grpc.Core;
using Ifcb.Contracts;
using Ifcb.Data.Bins;
using Ifcb.Data.Datasets;
using Ifcb.Models;
using Ifcb.Models.Weights;
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
        if (string.IsNullOrWhiteSpace(spec.Dataset))
            throw new RpcException(new Status(StatusCode.InvalidArgument, "dataset is required: the name of an uploaded dataset (see Datasets.List)."));
        try
        {
            spec.ToOptions();
        }
        catch (ArgumentException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }

        DatasetDescription dataset;
        try
        {
            dataset = await datasets.DescribeAsync(spec.Dataset, context.CancellationToken);
        }
        catch (ArgumentException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }
        catch (KeyNotFoundException e)
        {
            throw new RpcException(new Status(StatusCode.NotFound, e.Message));
        }

        if (spec.Pretrained && !await HasPretrainedWeightsAsync(spec.Architecture, context.CancellationToken))
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                new WeightsNotFoundException(spec.Architecture,
                    string.Join(" or ", PretrainedWeights.FileNames(spec.Architecture).Select(weights.Describe))).Message));

        var job = new TrainingJobRecord
        {
            JobId = NewId.NextGuid().ToString("N"),
            Request = spec,
            DatasetFingerprint = dataset.Fingerprint,
        };
        await jobs.CreateAsync(job, context.CancellationToken);
        await bus.Publish(new TrainModel(job.JobId), context.CancellationToken);
        logger.LogInformation("Queued training job {JobId}: {Model} on {Dataset} ({Images} images)", job.JobId, spec.Architecture,
            spec.Dataset, dataset.FileCount);
        return job.ToProto();
    }

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
        var cancelledWhileQueued = false;
        var job = await jobs.UpdateAsync(request.JobId, j =>
        {
            if (j.IsTerminal)
                return null;
            cancelledWhileQueued = j.State == TrainingJobState.Queued;
            return cancelledWhileQueued
                ? j with { State = TrainingJobState.Cancelled, CancelRequested = true }
                : j with { CancelRequested = true };
        }, context.CancellationToken);
        if (cancelledWhileQueued)
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
        if (string.IsNullOrWhiteSpace(request.RunId) || request.RunId.Contains('/') || request.RunId.Contains("..", StringComparison.Ordinal))
            throw new RpcException(new Status(StatusCode.InvalidArgument, "run_id must be a name without '/' or '..'."));
        var hasBins = !string.IsNullOrWhiteSpace(request.BinSet);
        if (hasBins == !string.IsNullOrWhiteSpace(request.Dataset))
            throw new RpcException(new Status(StatusCode.InvalidArgument, "Give exactly one input: bin_set (raw bins) or dataset (images)."));
        try
        {
            foreach (var pattern in request.Outfile)
                Ifcb.Inference.OutputPattern.Validate(pattern, hasBins ? Ifcb.Inference.RunInputType.Bin : Ifcb.Inference.RunInputType.Image);
            if (!string.IsNullOrEmpty(request.FilterMode))
                Ifcb.Inference.RunFilter.Parse(request.FilterMode, request.FilterKeywords);
            if (hasBins)
                await binSets.ListAsync(request.BinSet, context.CancellationToken);
            else
                await datasets.DescribeAsync(request.Dataset, context.CancellationToken);
        }
        catch (ArgumentException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }
        catch (KeyNotFoundException e)
        {
            throw new RpcException(new Status(StatusCode.NotFound, e.Message));
        }
        var version = await registry.ResolveAsync(request.Model, context.CancellationToken);
        if (version.Status != VersionStatus.Ready)
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"{version.Name}/{version.Version} is {version.Status}, not READY."));

        var run = new RunJobRecord
        {
            JobId = NewId.NextGuid().ToString("N"),
            ModelVersion = $"{version.Name}/{version.Version}",
            Request = new RunRequestSpec
            {
                Model = request.Model, RunId = request.RunId, BinSet = hasBins ? request.BinSet : null, Dataset = hasBins ? null : request.Dataset,
                OutputFiles = [.. request.Outfile], BatchSize = request.Batch > 0 ? request.Batch : 108,
                FilterMode = string.IsNullOrEmpty(request.FilterMode) ? null : request.FilterMode, FilterKeywords = [.. request.FilterKeywords],
                Device = string.IsNullOrWhiteSpace(request.Device) ? "auto" : request.Device,
            },
        };
        await runs.CreateAsync(run, context.CancellationToken);
        await bus.Publish(new RunModel(run.JobId), context.CancellationToken);
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
        var run = await runs.UpdateAsync(request.JobId, r => r.IsTerminal
            ? null
            : r.State == TrainingJobState.Queued
                ? r with { State = TrainingJobState.Cancelled, CancelRequested = true }
                : r with { CancelRequested = true }, context.CancellationToken);
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
