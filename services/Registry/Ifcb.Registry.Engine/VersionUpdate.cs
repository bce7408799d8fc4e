using System.Collections.Immutable;
using System.Globalization;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine;

/// <summary>
/// A change to a version's metadata that is not part of its checkpoint's identity (see
/// <see cref="ModelRegistry.UpdateVersionAsync"/>). Null fields are left as they are.
/// </summary>
public sealed record VersionUpdate
{
    /// <summary>Replaces the description (at most 5000 characters; empty clears it).</summary>
    public string? Description { get; init; }

    /// <summary>Metrics added or replaced, e.g. after a re-evaluation (finite numbers).</summary>
    public ImmutableSortedDictionary<string, double> SetMetrics { get; init; } = ImmutableSortedDictionary<string, double>.Empty;

    /// <summary>Metrics removed (absent ones are ignored).</summary>
    public ImmutableArray<string> RemoveMetrics { get; init; } = [];

    /// <summary>Replaces the CI lineage's commit (empty clears it).</summary>
    public string? SourceCommit { get; init; }

    /// <summary>Replaces the CI lineage's pipeline URL (empty clears it).</summary>
    public string? SourcePipelineUrl { get; init; }

    /// <summary>
    /// The version with this update applied; adds a (field, new value) pair to <paramref name="changes"/> per real change.
    /// </summary>
    internal ModelVersion ApplyTo(ModelVersion version, List<(string Key, string Value)> changes)
    {
        var updated = version;
        if (Description is { } description && description != version.Description)
        {
            updated = updated with { Description = description };
            changes.Add(("description", description));
        }

        var metrics = version.Metrics.SetItems(SetMetrics).RemoveRange(RemoveMetrics);
        if (metrics.Count > Limits.MaxListItems)
        {
            throw new IfcbException(ErrorKind.ResourceExhausted, string.Create(CultureInfo.InvariantCulture,
                $"Version {version.Version} of '{version.ModelName}' would have {metrics.Count} metrics, more than it may have " +
                $"(limit {nameof(Limits.MaxListItems)}); remove some."));
        }

        foreach (var (name, value) in SetMetrics.Where(m => !version.Metrics.TryGetValue(m.Key, out var old) || old != m.Value))
            changes.Add(("metrics." + name, value.ToString("R", CultureInfo.InvariantCulture)));
        foreach (var name in RemoveMetrics.Where(version.Metrics.ContainsKey))
            changes.Add(("metrics." + name, "(removed)"));
        updated = updated with { Metrics = metrics };

        var commit = SourceCommit is null ? version.Source.Commit : NullIfEmpty(SourceCommit);
        var pipeline = SourcePipelineUrl is null ? version.Source.PipelineUrl : NullIfEmpty(SourcePipelineUrl);
        if (commit != version.Source.Commit)
            changes.Add(("source_commit", commit ?? ""));
        if (pipeline != version.Source.PipelineUrl)
            changes.Add(("source_pipeline_url", pipeline ?? ""));

        return updated with { Source = version.Source with { Commit = commit, PipelineUrl = pipeline } };
    }

    private static string? NullIfEmpty(string text) => text.Length == 0 ? null : text;
}
