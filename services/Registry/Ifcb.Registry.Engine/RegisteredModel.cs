using System.Collections.Immutable;
using System.Text.Json.Serialization;

namespace Ifcb.Registry.Engine;

/// <summary>A registered model as stored in <c>models/{name}/model.json</c>.</summary>
public sealed record RegisteredModel
{
    public required string Name { get; init; }

    public string Description { get; init; } = "";

    public ImmutableSortedDictionary<string, string> Tags { get; init; } = ImmutableSortedDictionary<string, string>.Empty;

    /// <summary>Alias → version number. Kept here, not on the versions, so moving an alias is one ETag-guarded write.</summary>
    public ImmutableSortedDictionary<string, int> Aliases { get; init; } = ImmutableSortedDictionary<string, int>.Empty;

    /// <summary>
    /// Versions whose deletion has started (marked in the same ETag-guarded write that removed their aliases) and not
    /// yet finished. SetAlias refuses them, so no alias can be set on a version on its way out; deleting again finishes
    /// an interrupted deletion and clears the mark.
    /// </summary>
    public ImmutableSortedSet<int> DeletingVersions { get; init; } = [];

    /// <summary>Highest version number handed out so far (0 before the first); deleted numbers are never reused.</summary>
    public int LatestVersion { get; init; }

    /// <summary>
    /// Set on the old name's model.json when the model is renamed: from then on the old name answers NotFound naming the new
    /// one (the document stays as that redirect until the old name is deleted).
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? RenamedTo { get; init; }

    /// <summary>Set on the new name's model.json while a rename copies the model into it; cleared when it is complete.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? RenamedFrom { get; init; }

    /// <summary>Incremented by every write of model.json; audit entries carry it, which orders alias moves exactly.</summary>
    public long Revision { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    public required string CreatedBy { get; init; }

    public required DateTimeOffset UpdatedAt { get; init; }

    public required string UpdatedBy { get; init; }
}
