using System.Collections.Immutable;

namespace Ifcb.Registry.Engine;

/// <summary>The kinds of change the audit log records.</summary>
public enum AuditAction
{
    ModelCreated,
    ModelUpdated,
    ModelDeleted,
    ModelRenamed,
    ModelTagSet,
    ModelTagDeleted,
    VersionRegistered,
    VersionFailed,
    VersionTagSet,
    VersionTagDeleted,
    VersionUpdated,
    VersionDeleted,
    AliasSet,
    AliasDeleted,
}

/// <summary>
/// One append-only audit record (<c>audit/{model}/{ticks}-{guid}.json</c>). Details hold the specifics, e.g. for an
/// alias move <c>alias</c>, <c>previous_version</c> (empty when new) and <c>new_version</c>.
/// </summary>
public sealed record AuditEntry
{
    public required string ModelName { get; init; }

    public required DateTimeOffset Timestamp { get; init; }

    public required string Actor { get; init; }

    public required AuditAction Action { get; init; }

    public int? Version { get; init; }

    /// <summary>model.json revision this change produced, when it changed model.json; orders such changes exactly.</summary>
    public long? ModelRevision { get; init; }

    public ImmutableSortedDictionary<string, string> Details { get; init; } = ImmutableSortedDictionary<string, string>.Empty;
}
