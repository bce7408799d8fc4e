using System.Reflection;
using Ifcb.Testing;
using Microsoft.Extensions.Hosting;

namespace Ifcb.Services.Tests;

/// <summary>Every gRPC service class the three hosts can map, and every RPC they implement.</summary>
internal static class PlatformRpcs
{
    /// <summary>The hosts' own assemblies and Ifcb.ServiceDefaults, whose diagnostics probe every host maps.</summary>
    public static IReadOnlyList<Assembly> Assemblies { get; } =
    [
        typeof(global::Ifcb.Training.TrainingGrpcService).Assembly,
        typeof(global::Ifcb.NormStats.NormStatsGrpcService).Assembly,
        typeof(global::Ifcb.Registry.RegistryGrpcService).Assembly,
        typeof(ApiKeyInterceptor).Assembly,
    ];

    public static Assembly Protos { get; } = typeof(global::Ifcb.Protos.Training).Assembly;

    public static IReadOnlyList<Type> Services { get; } = [.. Assemblies.SelectMany(GrpcRpcs.ServiceClasses)];

    public static IReadOnlyList<RpcImplementation> All { get; } = [.. Services.SelectMany(s => GrpcRpcs.Implemented(s, Protos))];
}
