using Grpc.Core;
using Ifcb.Models;
using Ifcb.Protos;
using Ifcb.Training.Engine.Jobs;

namespace Ifcb.Training;

/// <summary>
/// The Training gRPC API (protos/training.proto): training jobs, a thin adapter over the job store and
/// <see cref="TrainingSubmissions"/>.
/// </summary>
public sealed class TrainingGrpcService(
    ServiceIdentity identity,
    TrainingJobStore jobs,
    TrainingSubmissions submissions,
    IConfiguration configuration) : Ifcb.Protos.Training.TrainingBase
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
    public override async Task<TrainingJob> StartTraining(StartTrainingRequest request, ServerCallContext context) =>
        (await submissions.SubmitAsync(request, context.CancellationToken)).ToProto();

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
        return (await submissions.CancelAsync(request.JobId, "cancelled by a user", context.CancellationToken)).ToProto();
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
}
