using Grpc.Core;
using Grpc.Health.V1;
using Ifcb.Protos;
using Ifcb.Testing;
using Microsoft.Extensions.Hosting;

namespace Ifcb.Services.Tests;

/// <summary>
/// The key check as a client meets it: every RPC of every service class, called over a real in-process gRPC server
/// with the services' gRPC pipeline, holding only the key's SHA-256 (as the AppHost configures the services).
/// </summary>
public sealed class ApiKeyCheckTests : IAsyncLifetime
{
    private const string Key = "in-process-test-key-0123456789abcdef";
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(20);
    private InProcessGrpcHost _host = null!;

    private static Metadata WithKey(string key) => new() { { ApiKeyInterceptor.HeaderName, key } };

    public async Task InitializeAsync() =>
        _host = await InProcessGrpcHost.StartAsync(PlatformRpcs.Services,
            new Dictionary<string, string?> { [ApiKeyVerifier.Sha256ConfigurationKey] = ApiKeyVerifier.Sha256Hex(Key) });

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task Every_rpc_that_needs_the_key_answers_Unauthenticated_without_it_and_PermissionDenied_with_a_wrong_one()
    {
        var writes = PlatformRpcs.All.Where(rpc => rpc.NeedsKey).ToList();
        Assert.NotEmpty(writes);

        var wrong = new List<string>();
        foreach (var rpc in writes)
        {
            var anonymous = await GrpcRpcs.CallWithEmptyRequestAsync(_host.Channel.CreateCallInvoker(), rpc.Descriptor, null, CallTimeout);
            var badKey = await GrpcRpcs.CallWithEmptyRequestAsync(_host.Channel.CreateCallInvoker(), rpc.Descriptor, WithKey("not-the-key"), CallTimeout);
            var bearer = await GrpcRpcs.CallWithEmptyRequestAsync(_host.Channel.CreateCallInvoker(), rpc.Descriptor,
                new Metadata { { "authorization", "Bearer not-the-key" } }, CallTimeout);
            if (anonymous.StatusCode != StatusCode.Unauthenticated || !anonymous.Detail.Contains(rpc.Path, StringComparison.Ordinal))
                wrong.Add($"{rpc} without a key: {anonymous.StatusCode} {anonymous.Detail}");
            if (badKey.StatusCode != StatusCode.PermissionDenied)
                wrong.Add($"{rpc} with a wrong x-api-key: {badKey.StatusCode} {badKey.Detail}");
            if (bearer.StatusCode != StatusCode.PermissionDenied)
                wrong.Add($"{rpc} with a wrong bearer token: {bearer.StatusCode} {bearer.Detail}");
        }

        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    [Fact]
    public async Task The_key_passes_the_check_when_the_service_holds_only_its_sha256()
    {
        var refused = new List<string>();
        foreach (var rpc in PlatformRpcs.All.Where(rpc => rpc.NeedsKey))
        {
            // Past the check the call reaches the service, which this host cannot create: any status but the check's own.
            var status = await GrpcRpcs.CallWithEmptyRequestAsync(_host.Channel.CreateCallInvoker(), rpc.Descriptor, WithKey(Key), CallTimeout);
            if (status.StatusCode is StatusCode.Unauthenticated or StatusCode.PermissionDenied or StatusCode.FailedPrecondition)
                refused.Add($"{rpc}: {status.StatusCode} {status.Detail}");
        }

        Assert.True(refused.Count == 0, string.Join("\n", refused));
    }

    [Fact]
    public async Task Read_only_rpcs_need_no_key()
    {
        var refused = new List<string>();
        foreach (var rpc in PlatformRpcs.All.Where(rpc => rpc.ReadOnly))
        {
            var status = await GrpcRpcs.CallWithEmptyRequestAsync(_host.Channel.CreateCallInvoker(), rpc.Descriptor, null, CallTimeout);
            if (status.StatusCode is StatusCode.Unauthenticated or StatusCode.PermissionDenied)
                refused.Add($"{rpc}: {status.StatusCode} {status.Detail}");
        }

        Assert.True(refused.Count == 0, string.Join("\n", refused));
    }

    [Fact]
    public async Task The_grpc_health_service_needs_no_key()
    {
        var status = await GrpcRpcs.CallWithEmptyRequestAsync(_host.Channel.CreateCallInvoker(), Health.Descriptor.FindMethodByName("Check"), null, CallTimeout);

        Assert.Equal(StatusCode.OK, status.StatusCode);
    }

    [Fact]
    public async Task An_rpc_marked_neither_way_needs_the_key()
    {
        await using var host = await InProcessGrpcHost.StartAsync([typeof(UnclassifiedDiagnostics)],
            new Dictionary<string, string?> { [ApiKeyVerifier.Sha256ConfigurationKey] = ApiKeyVerifier.Sha256Hex(Key) });
        var client = new Diagnostics.DiagnosticsClient(host.Channel);

        var anonymous = await Assert.ThrowsAsync<RpcException>(async () => await client.ProbePlumbingAsync(new ProbePlumbingRequest()));
        var withKey = await client.ProbePlumbingAsync(new ProbePlumbingRequest(), WithKey(Key));

        Assert.Equal(StatusCode.Unauthenticated, anonymous.StatusCode);
        Assert.Equal("answered", withKey.ProbeId);
    }

    [Fact]
    public async Task A_service_configured_with_the_plain_key_still_accepts_it()
    {
        await using var host = await InProcessGrpcHost.StartAsync([typeof(UnclassifiedDiagnostics)],
            new Dictionary<string, string?> { [ApiKeyVerifier.PlainConfigurationKey] = Key });
        var client = new Diagnostics.DiagnosticsClient(host.Channel);

        var withKey = await client.ProbePlumbingAsync(new ProbePlumbingRequest(), WithKey(Key));
        var wrong = await Assert.ThrowsAsync<RpcException>(async () => await client.ProbePlumbingAsync(new ProbePlumbingRequest(), WithKey(Key + "x")));

        Assert.Equal("answered", withKey.ProbeId);
        Assert.Equal(StatusCode.PermissionDenied, wrong.StatusCode);
    }

    [Fact]
    public async Task A_service_with_no_key_configured_refuses_writes_saying_what_to_set()
    {
        await using var host = await InProcessGrpcHost.StartAsync([typeof(UnclassifiedDiagnostics)], new Dictionary<string, string?>());
        var client = new Diagnostics.DiagnosticsClient(host.Channel);

        var error = await Assert.ThrowsAsync<RpcException>(async () => await client.ProbePlumbingAsync(new ProbePlumbingRequest(), WithKey(Key)));

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("Ifcb__ApiKeySha256", error.Status.Detail, StringComparison.Ordinal);
    }

    /// <summary>A service whose author forgot to classify its RPC.</summary>
    private sealed class UnclassifiedDiagnostics : Diagnostics.DiagnosticsBase
    {
        public override Task<ProbePlumbingReply> ProbePlumbing(ProbePlumbingRequest request, ServerCallContext context) =>
            Task.FromResult(new ProbePlumbingReply { ProbeId = "answered" });
    }
}
