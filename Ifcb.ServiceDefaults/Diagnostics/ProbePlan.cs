using System.Globalization;
using Ifcb.Platform;
using Ifcb.Protos;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// A checked <see cref="ProbePlumbingRequest"/>: which services to ask and how long to wait. Targets become queue names
/// ("{target}-probe"), and sending to a queue declares it durably on the broker, so only the platform's own services
/// are accepted: a request string can never create a queue.
/// </summary>
public sealed record ProbePlan(IReadOnlyList<string> Targets, TimeSpan Timeout)
{
    /// <summary>The services that answer probes, each on its "{service}-probe" queue.</summary>
    public static IReadOnlyList<string> KnownServices { get; } = ["training", "normstats", "registry"];

    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    /// <exception cref="IfcbException">InvalidArgument: no target, an unknown or repeated target, or a timeout out of range.</exception>
    public static ProbePlan From(ProbePlumbingRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var known = string.Join(", ", KnownServices);
        if (request.Targets.Count == 0)
            throw IfcbException.InvalidArgument($"Name at least one target service ({known}).");
        // Each known service at most once, so the list can never be longer than the platform.
        if (request.Targets.Count > KnownServices.Count)
            throw IfcbException.InvalidArgument(string.Create(CultureInfo.InvariantCulture,
                $"targets has {request.Targets.Count} items; name each of {known} at most once."));
        foreach (var target in request.Targets)
            if (!KnownServices.Contains(target, StringComparer.Ordinal))
                throw IfcbException.InvalidArgument(
                    $"Unknown target service '{(target.Length <= 64 ? target : target[..64] + "…")}'; probes go to {known}.");
        if (request.Targets.Distinct(StringComparer.Ordinal).Count() != request.Targets.Count)
            throw IfcbException.InvalidArgument($"targets names a service twice; name each of {known} at most once.");

        var maxMs = (int)Limits.MaxProbeTimeout.TotalMilliseconds;
        Limits.Check(request.TimeoutMs, 0, maxMs, "timeout_ms", nameof(Limits.MaxProbeTimeout));
        var timeout = request.TimeoutMs == 0 ? DefaultTimeout : TimeSpan.FromMilliseconds(request.TimeoutMs);
        return new ProbePlan([.. request.Targets], timeout);
    }
}
