using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Ifcb.Client;
using Ifcb.Protos;

namespace Ifcb.Cli.Tests;

/// <summary>Which calls the clients retry, and the numbers of the retry policy.</summary>
public sealed class CallPolicyTests
{
    private static readonly ServiceDescriptor[] Services =
        [Ifcb.Protos.Training.Descriptor, Runs.Descriptor, Sweeps.Descriptor, Datasets.Descriptor, Ifcb.Protos.NormStats.Descriptor, Registry.Descriptor, Diagnostics.Descriptor];

    // What a write's name starts with. A new RPC named otherwise must be listed as a read or added here, deliberately.
    private static readonly string[] WriteVerbs = ["Start", "Cancel", "Upload", "Delete", "Compute", "Create", "Update", "Register", "Set", "Probe",
        "Rename", "Revoke", "Test"];

    private static IEnumerable<string> AllRpcs() => Services.SelectMany(s => s.Methods.Select(m => $"{s.Name}.{m.Name}"));

    [Fact]
    public void Every_rpc_is_either_a_listed_read_or_named_like_a_write()
    {
        var unclassified = AllRpcs().Where(rpc => !CallPolicyInterceptor.ReadMethods.Contains(rpc)
            && !WriteVerbs.Any(verb => rpc[(rpc.IndexOf('.', StringComparison.Ordinal) + 1)..].StartsWith(verb, StringComparison.Ordinal))).ToList();
        Assert.True(unclassified.Count == 0, "Decide whether these RPCs only read: " + string.Join(", ", unclassified));
    }

    [Fact]
    public void Every_listed_read_exists_and_none_is_named_like_a_write()
    {
        var rpcs = AllRpcs().ToHashSet(StringComparer.Ordinal);
        Assert.All(CallPolicyInterceptor.ReadMethods, read =>
        {
            Assert.Contains(read, rpcs);
            Assert.DoesNotContain(WriteVerbs, verb => read[(read.IndexOf('.', StringComparison.Ordinal) + 1)..].StartsWith(verb, StringComparison.Ordinal));
        });
    }

    private static Method<TRequest, TResponse> Unary<TRequest, TResponse>(string service, string name)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new() =>
        new(MethodType.Unary, "ifcb.v1." + service, name,
            Marshallers.Create(m => m.ToByteArray(), b => new MessageParser<TRequest>(() => new TRequest()).ParseFrom(b)),
            Marshallers.Create(m => m.ToByteArray(), b => new MessageParser<TResponse>(() => new TResponse()).ParseFrom(b)));

    [Fact]
    public void A_write_is_idempotent_only_with_an_idempotency_key()
    {
        // No unary write carries a key yet; one that does (a header-like request) is retried the moment it has one set.
        var write = Unary<RegisterVersionHeader, ModelVersion>("Registry", "RegisterSomething");
        Assert.False(CallPolicyInterceptor.IsIdempotent(write, new RegisterVersionHeader { Name = "m" }));
        Assert.True(CallPolicyInterceptor.IsIdempotent(write, new RegisterVersionHeader { Name = "m", IdempotencyKey = "ci:1" }));
        Assert.False(CallPolicyInterceptor.IsIdempotent(Unary<SetAliasRequest, RegisteredModel>("Registry", "SetAlias"), new SetAliasRequest()));
        Assert.True(CallPolicyInterceptor.IsIdempotent(Unary<VersionRef, ModelVersion>("Registry", "GetVersion"), new VersionRef()));
    }

    [Fact]
    public void Backoff_doubles_from_a_quarter_second_to_at_most_four_with_jitter_and_stops_after_five_attempts()
    {
        var policy = CallRetry.Default;
        for (var i = 0; i < 200; i++)
        {
            Assert.InRange(policy.Backoff(1).TotalSeconds, 0.125, 0.25);
            Assert.InRange(policy.Backoff(2).TotalSeconds, 0.25, 0.5);
            Assert.InRange(policy.Backoff(4).TotalSeconds, 1, 2);
            Assert.InRange(policy.Backoff(9).TotalSeconds, 2, 4);
        }
        Assert.Equal(5, policy.MaxAttempts);
        Assert.Equal(TimeSpan.FromSeconds(60), policy.Budget);
        Assert.NotNull(policy.NextDelay(4, TimeSpan.Zero));
        Assert.Null(policy.NextDelay(5, TimeSpan.Zero));
        Assert.Null(policy.NextDelay(1, TimeSpan.FromSeconds(59.99)));
        Assert.True(Enumerable.Range(0, 50).Select(_ => policy.Backoff(3)).Distinct().Count() > 1, "no jitter");
    }

    [Theory]
    [InlineData(StatusCode.Unavailable, true)]
    [InlineData(StatusCode.DeadlineExceeded, true)]
    [InlineData(StatusCode.ResourceExhausted, true)]
    [InlineData(StatusCode.Aborted, false)]
    [InlineData(StatusCode.InvalidArgument, false)]
    [InlineData(StatusCode.NotFound, false)]
    [InlineData(StatusCode.Unauthenticated, false)]
    [InlineData(StatusCode.Internal, false)]
    public void Transient_status_codes(StatusCode code, bool transient) => Assert.Equal(transient, CallRetry.IsTransient(code));

    [Theory]
    [InlineData(StatusCode.Unavailable, "ci:1", true)]
    [InlineData(StatusCode.DeadlineExceeded, "ci:1", true)]
    [InlineData(StatusCode.Aborted, "ci:1", true)]           // the registry asks for a retry (key in use, version contention)
    [InlineData(StatusCode.ResourceExhausted, "ci:1", false)] // the registry's size and version-number limits
    [InlineData(StatusCode.DataLoss, "ci:1", false)]
    [InlineData(StatusCode.InvalidArgument, "ci:1", false)]
    [InlineData(StatusCode.Unavailable, "", false)]          // it reached the registry, and without a key a repeat may be a second version
    [InlineData(StatusCode.Aborted, "", false)]
    public void A_registration_is_sent_again_only_with_a_key_and_after_a_passing_failure(StatusCode code, string key, bool resent) =>
        Assert.Equal(resent, RegistryUpload.MayResend(new RegisterVersionHeader { IdempotencyKey = key }, new RpcException(new Status(code, "x"))));
}
