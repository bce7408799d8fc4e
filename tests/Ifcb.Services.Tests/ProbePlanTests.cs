using Ifcb.Platform;
using Ifcb.Protos;
using Microsoft.Extensions.Hosting;

namespace Ifcb.Services.Tests;

/// <summary>Diagnostics.ProbePlumbing's request rules: only the platform's services, each once, and a bounded wait.</summary>
public sealed class ProbePlanTests
{
    private static ProbePlumbingRequest Request(int timeoutMs, params string[] targets) => new() { Targets = { targets }, TimeoutMs = timeoutMs };

    private static IfcbException Refused(ProbePlumbingRequest request)
    {
        var error = Assert.Throws<IfcbException>(() => ProbePlan.From(request));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        return error;
    }

    [Fact]
    public void Known_services_each_once_with_a_timeout_in_range_are_accepted()
    {
        var plan = ProbePlan.From(Request(60_000, "training", "normstats", "registry"));

        Assert.Equal(["training", "normstats", "registry"], plan.Targets);
        Assert.Equal(TimeSpan.FromSeconds(60), plan.Timeout);
        Assert.Equal(ProbePlan.DefaultTimeout, ProbePlan.From(Request(0, "registry")).Timeout);
    }

    [Theory]
    [InlineData("nobody")]
    [InlineData("Training")]
    [InlineData("training-probe")]
    [InlineData("amq.gen-anything")]
    [InlineData("")]
    public void A_target_that_is_not_a_platform_service_is_refused_before_any_queue_is_named(string target)
    {
        var error = Refused(Request(1000, target));

        Assert.Contains("training, normstats, registry", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_long_unknown_target_is_not_echoed_whole()
    {
        var error = Refused(Request(1000, new string('x', 100_000)));

        Assert.True(error.Message.Length < 300, error.Message);
    }

    [Fact]
    public void Repeated_or_too_many_targets_are_refused()
    {
        Assert.Contains("twice", Refused(Request(1000, "registry", "registry")).Message, StringComparison.Ordinal);
        Assert.Contains("4 items", Refused(Request(1000, "training", "normstats", "registry", "training")).Message, StringComparison.Ordinal);
        Assert.Contains("at least one", Refused(Request(1000)).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(60_001)]
    [InlineData(int.MaxValue)]
    [InlineData(int.MinValue)]
    public void A_timeout_out_of_range_is_refused_naming_the_limit(int timeoutMs)
    {
        var error = Refused(Request(timeoutMs, "normstats"));

        Assert.Contains("timeout_ms", error.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(Limits.MaxProbeTimeout), error.Message, StringComparison.Ordinal);
    }
}
