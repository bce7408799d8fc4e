using Grpc.Core;
using Ifcb.Protos;
using Microsoft.Extensions.Hosting;

namespace Ifcb.NormStats;

/// <summary>The NormStats gRPC API (protos/normstats.proto). RPCs not overridden here answer Unimplemented.</summary>
public sealed class NormStatsGrpcService(ServiceIdentity identity) : Ifcb.Protos.NormStats.NormStatsBase
{
    public override Task<ServiceInfo> GetInfo(GetInfoRequest request, ServerCallContext context) =>
        Task.FromResult(identity.ToServiceInfo());
}
