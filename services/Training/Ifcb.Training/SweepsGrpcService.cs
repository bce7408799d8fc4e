using Grpc.Core;
using Ifcb.Protos;

namespace Ifcb.Training;

/// <summary>The Sweeps gRPC API (protos/sweeps.proto): a thin adapter over <see cref="SweepCoordinator"/>.</summary>
public sealed class SweepsGrpcService(SweepCoordinator coordinator) : Sweeps.SweepsBase
{
    [RequiresApiKey]
    public override async Task<Sweep> StartSweep(StartSweepRequest request, ServerCallContext context)
    {
        var sweep = await coordinator.StartAsync(request, context.CancellationToken);
        return (await RequireAsync(sweep.JobId, context.CancellationToken)).ToProto();
    }

    [ReadOnlyRpc]
    public override async Task<Sweep> GetSweep(SweepRef request, ServerCallContext context) =>
        (await RequireAsync(request.SweepId, context.CancellationToken)).ToProto();

    [ReadOnlyRpc]
    public override Task WatchSweep(SweepRef request, IServerStreamWriter<Sweep> responseStream, ServerCallContext context) =>
        JobWatch.StreamUntilTerminalAsync(ct => RequireAsync(request.SweepId, ct), v => v.UpdatedAt, v => v.Ended, v => v.ToProto(),
            responseStream, context.CancellationToken);

    [ReadOnlyRpc]
    public override async Task<ListSweepsReply> ListSweeps(ListSweepsRequest request, ServerCallContext context)
    {
        var pageSize = request.PageSize switch { <= 0 => 20, > 100 => 100, var n => n };
        var offset = 0;
        if (!string.IsNullOrEmpty(request.PageToken) && (!int.TryParse(request.PageToken, out offset) || offset < 0))
            throw new RpcException(new Status(StatusCode.InvalidArgument, "page_token is not one this service returned."));
        var all = await coordinator.ListAsync(context.CancellationToken);
        var reply = new ListSweepsReply();
        foreach (var sweep in all.Skip(offset).Take(pageSize))
        {
            if (await coordinator.ReadAsync(sweep.JobId, context.CancellationToken) is { } view)
                reply.Sweeps.Add(view.ToProto());
        }
        if (offset + pageSize < all.Count)
            reply.NextPageToken = (offset + pageSize).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return reply;
    }

    [RequiresApiKey]
    public override async Task<Sweep> CancelSweep(SweepRef request, ServerCallContext context)
    {
        await RequireAsync(request.SweepId, context.CancellationToken);
        await coordinator.CancelAsync(request.SweepId, "cancelled by a user", context.CancellationToken);
        return (await RequireAsync(request.SweepId, context.CancellationToken)).ToProto();
    }

    private async Task<SweepView> RequireAsync(string sweepId, CancellationToken cancellationToken) =>
        await coordinator.ReadAsync(sweepId, cancellationToken)
        ?? throw new RpcException(new Status(StatusCode.NotFound, $"No sweep '{sweepId}'; see ListSweeps."));
}
