using System.Reflection;
using Google.Protobuf.Reflection;

namespace Ifcb.Services.Tests;

/// <summary>
/// Every RPC is classified once, where it is implemented: [RequiresApiKey] when it writes (stores, queues, deletes or
/// creates anything), [ReadOnlyRpc] when it only reads. A new RPC without either fails here, by name.
/// </summary>
public sealed class RpcClassificationTests
{
    [Fact]
    public void Every_rpc_that_a_service_implements_is_marked_as_needing_the_key_or_as_read_only()
    {
        var problems = PlatformRpcs.All
            .Where(rpc => rpc.RequiresApiKey == rpc.ReadOnly)
            .Select(rpc => rpc.RequiresApiKey ? $"{rpc}: marked both [RequiresApiKey] and [ReadOnlyRpc]" : $"{rpc}: marked neither")
            .ToList();

        Assert.True(problems.Count == 0,
            "Mark each RPC implementation [RequiresApiKey] (it writes) or [ReadOnlyRpc] (it only reads):\n" + string.Join("\n", problems));
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
}
