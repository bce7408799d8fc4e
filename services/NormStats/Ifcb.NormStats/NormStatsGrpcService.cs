using Grpc.Core;
using Ifcb.NormStats.Engine.Jobs;
using Ifcb.Platform;
using Ifcb.Protos;

namespace Ifcb.NormStats;

/// <summary>The NormStats gRPC API (protos/normstats.proto): a thin adapter over the job coordinator and the bus.</summary>
public sealed class NormStatsGrpcService(ServiceIdentity identity, NormStatsJobLauncher launcher, NormStatsJobStore jobs)
    : Ifcb.Protos.NormStats.NormStatsBase
{
    [ReadOnlyRpc]
    public override Task<ServiceInfo> GetInfo(GetInfoRequest request, ServerCallContext context) =>
        Task.FromResult(identity.ToServiceInfo(new Dictionary<string, string>
        {
            ["results_container"] = NormStatsJobStore.ContainerName,
            ["default_shard_size"] = NormStatsJobOptions.DefaultShardSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
        }));

    [RequiresApiKey]
    public override async Task<NormJob> Compute(ComputeNormRequest request, ServerCallContext context)
    {
        if (string.IsNullOrWhiteSpace(request.Dataset))
            throw new RpcException(new Status(StatusCode.InvalidArgument,
                "dataset is required: the name of an uploaded dataset (see Datasets.List)."));
        // Bad options (ArgumentException) and unknown datasets (KeyNotFoundException) are mapped by the ErrorInterceptor.
        Limits.CheckText(request.Options?.ClassConfigCsv, "options.class_config_csv", Limits.MaxClassConfigBytes);
        try
        {
            var deadline = request.DeadlineSeconds == 0 ? (DateTimeOffset?)null
                : DateTimeOffset.UtcNow.AddSeconds(Limits.Check(request.DeadlineSeconds, 1, (long)Limits.MaxJobDeadline.TotalSeconds,
                    "deadline_seconds", nameof(Limits.MaxJobDeadline)));
            var job = await launcher.LaunchAsync(request.Dataset, request.Options.ToJobOptions(), null, context.CancellationToken,
                deadline);
            return job.ToProto();
        }
        catch (NoImagesAfterFiltersException e)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition, e.Message));
        }
    }

    [ReadOnlyRpc]
    public override async Task<NormJob> Get(JobRef request, ServerCallContext context) =>
        (await RequireJobAsync(request.JobId, context.CancellationToken)).ToProto();

    [ReadOnlyRpc]
    public override Task Watch(JobRef request, IServerStreamWriter<NormJob> responseStream, ServerCallContext context) =>
        JobWatch.StreamUntilTerminalAsync(ct => RequireJobAsync(request.JobId, ct), j => j.UpdatedAt, j => j.IsTerminal, j => j.ToProto(),
            responseStream, context.CancellationToken);

    [ReadOnlyRpc]
    public override async Task<NormResult> Lookup(LookupNormRequest request, ServerCallContext context)
    {
        var fingerprint = request.DatasetFingerprint ?? "";
        if (fingerprint.Length != 64 || !fingerprint.All(char.IsAsciiHexDigitLower))
            throw new RpcException(new Status(StatusCode.InvalidArgument,
                $"dataset_fingerprint \"{fingerprint}\" is not 64 lowercase hex digits; " +
                "use DatasetInfo.fingerprint from the Datasets service."));
        string hash;
        try
        {
            hash = request.Options.ToJobOptions().CacheHash();
        }
        catch (ArgumentException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }
        var cached = await jobs.GetCachedAsync(fingerprint, hash, context.CancellationToken)
            ?? throw new RpcException(new Status(StatusCode.NotFound,
                $"No cached statistics for dataset {fingerprint[..12]}… with these options; run Compute first."));
        return cached.ToProto();
    }

    private async Task<NormStatsJobRecord> RequireJobAsync(string jobId, CancellationToken cancellationToken) =>
        await jobs.GetAsync(jobId, cancellationToken)
        ?? throw new RpcException(new Status(StatusCode.NotFound, $"No norm-stats job '{jobId}'; Compute returns the job id."));
}
