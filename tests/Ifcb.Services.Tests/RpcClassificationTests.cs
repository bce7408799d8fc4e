using System.Reflection;
using Google.Protobuf.Reflection;

namespace Ifcb.Services.Tests;

/// <summary>
/// Every RPC is classified once, where it is implemented: [RequiresApiKey] when it writes (stores, queues, deletes or
/// creates anything), [RequiresAdmin] when it manages access (API keys), [ReadOnlyRpc] when it only reads. A new RPC
/// without one fails here, by name.
/// </summary>
public sealed class RpcClassificationTests
{
    [Fact]
    public void Every_rpc_that_a_service_implements_carries_exactly_one_classification()
    {
        var problems = PlatformRpcs.All
            .Where(rpc => rpc.Classifications != 1)
            .Select(rpc => $"{rpc}: marked {rpc.Classifications} of them")
            .ToList();

        Assert.True(problems.Count == 0,
            "Mark each RPC implementation with exactly one of [RequiresApiKey] (it writes), [RequiresAdmin] (it manages access) " +
            "or [ReadOnlyRpc] (it only reads):\n" + string.Join("\n", problems));
    }

    [Fact]
    public void The_walk_reaches_every_service_declared_in_the_protos()
    {
        // A service class the walk missed could hide unclassified RPCs: each proto service must be found implemented.
        var declared = PlatformRpcs.Protos.GetTypes()
            .Select(t => t.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static)?.GetValue(null))
            .OfType<ServiceDescriptor>()
            .Select(d => d.FullName)
            .Order()
            .ToList();
        var implemented = PlatformRpcs.All.Select(rpc => rpc.Descriptor.Service.FullName).Distinct().Order().ToList();

        Assert.Equal(["ifcb.v1.Datasets", "ifcb.v1.Diagnostics", "ifcb.v1.NormStats", "ifcb.v1.Registry", "ifcb.v1.Runs", "ifcb.v1.Sweeps",
            "ifcb.v1.Training"], declared);
        Assert.Equal(declared, implemented);
    }

    [Theory]
    [InlineData("/ifcb.v1.NormStats/Compute")]
    [InlineData("/ifcb.v1.Diagnostics/ProbePlumbing")]
    [InlineData("/ifcb.v1.Training/StartTraining")]
    [InlineData("/ifcb.v1.Runs/StartRun")]
    [InlineData("/ifcb.v1.Sweeps/StartSweep")]
    [InlineData("/ifcb.v1.Sweeps/CancelSweep")]
    [InlineData("/ifcb.v1.Datasets/Upload")]
    [InlineData("/ifcb.v1.Registry/RegisterVersion")]
    public void Rpcs_that_write_or_create_need_the_key(string path)
    {
        var rpc = Assert.Single(PlatformRpcs.All, r => r.Path == path);

        Assert.True(rpc.RequiresApiKey, $"{rpc} writes, so it must be marked [RequiresApiKey].");
    }

    [Theory]
    [InlineData("/ifcb.v1.Registry/CreateApiKey")]
    [InlineData("/ifcb.v1.Registry/ListApiKeys")]
    [InlineData("/ifcb.v1.Registry/RevokeApiKey")]
    public void Rpcs_that_manage_keys_need_an_admin(string path)
    {
        var rpc = Assert.Single(PlatformRpcs.All, r => r.Path == path);

        Assert.True(rpc.RequiresAdmin, $"{rpc} manages access, so it must be marked [RequiresAdmin].");
    }
}
