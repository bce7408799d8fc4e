using Grpc.Core;
using Ifcb.Protos;
using Microsoft.Extensions.Hosting;

namespace Ifcb.Registry;

/// <summary>The Registry gRPC API (protos/registry.proto). RPCs not overridden here answer Unimplemented.</summary>
public sealed class RegistryGrpcService(ServiceIdentity identity) : Ifcb.Protos.Registry.RegistryBase
{
    public override Task<ServiceInfo> GetInfo(GetInfoRequest request, ServerCallContext context) =>
        Task.FromResult(identity.ToServiceInfo());
}
