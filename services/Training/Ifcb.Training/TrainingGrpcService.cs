using Grpc.Core;
using Ifcb.Protos;
using Microsoft.Extensions.Hosting;

namespace Ifcb.Training;

/// <summary>The Training gRPC API (protos/training.proto). RPCs not overridden here answer Unimplemented.</summary>
public sealed class TrainingGrpcService(ServiceIdentity identity) : Ifcb.Protos.Training.TrainingBase
{
    public override Task<ServiceInfo> GetInfo(GetInfoRequest request, ServerCallContext context) =>
        Task.FromResult(identity.ToServiceInfo());
}
