using System.Collections.Immutable;
using System.Text.Json.Serialization;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>Lifecycle of a version: PENDING while its checkpoint uploads, then READY, or FAILED (never READY after).</summary>
public enum ModelVersionStatus
{
    Pending,
    Ready,
    Failed,
}


/// <summary>Where a version came from (lineage): the training job, the code and the pipeline that produced it.</summary>
public sealed record VersionSource
{
    public string? TrainingJobId { get; init; }

    public string? Commit { get; init; }

    public string? PipelineUrl { get; init; }

    /// <summary>
    /// The version this one was fine-tuned from (NAME/VERSION, <c>ifcb train --from</c>); null for a fresh start. Not written
    /// when null, so documents of versions without a parent keep the format earlier registries wrote.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ParentVersion { get; init; }
}

/// <summary>
/// One version of a registered model, as stored in <c>models/{name}/versions/{N}/version.json</c>. Its status is
/// also written to the blob's metadata (<c>status</c>), so the expiry sweep lists PENDING versions without reading all.
/// </summary>
public sealed record ModelVersion : VersionMetadata, IListedMetadata
{
    private const string StatusMetadataKey = "status";

    public required string ModelName { get; init; }

    public required int Version { get; init; }

    public required ModelVersionStatus Status { get; init; }

    /// <summary>Why the version is FAILED; null otherwise.</summary>
    public string? StatusMessage { get; init; }

    /// <summary>Blob name of the checkpoint inside the registry's container.</summary>
    public required string CheckpointBlob { get; init; }

    /// <summary>Lower-case hex sha256 of the checkpoint bytes.</summary>
    public required string Sha256 { get; init; }

    public required long SizeBytes { get; init; }

    public string? IdempotencyKey { get; init; }

    /// <summary>
    /// The per-class score thresholds the checkpoint carries (chosen from its validation scores at the end of training),
    /// by class; classes without one are absent. Read from the checkpoint when the version is stored; null for
    /// checkpoints without thresholds (and versions stored before they were read).
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ImmutableSortedDictionary<string, double>? ClassThresholds { get; init; }

    /// <summary>
    /// Set when the model is renamed: this document (under the old name) is frozen, copied to the new name, then deleted.
    /// No registration, update or expiry changes a moved document. Not written when null (documents keep their format).
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? MovedTo { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    public required string CreatedBy { get; init; }

    public required DateTimeOffset UpdatedAt { get; init; }

    public required string UpdatedBy { get; init; }

    /// <summary>Aliases pointing at this version, filled from model.json when read (not stored with the version).</summary>
    [JsonIgnore]
    public ImmutableArray<string> Aliases { get; init; } = [];

    IDictionary<string, string> IListedMetadata.ListedMetadata =>
        new Dictionary<string, string> { [StatusMetadataKey] = Status.ToString().ToLowerInvariant() };

    /// <summary>
    /// True when a version document's blob metadata says READY or FAILED: such a version can never expire. Documents
    /// written before the status was copied into metadata have none and count as unsettled (they are read to find out).
    /// </summary>
    internal static bool IsSettled(IDictionary<string, string> blobMetadata) =>
        blobMetadata.TryGetValue(StatusMetadataKey, out var status)
        && (status == nameof(ModelVersionStatus.Ready).ToLowerInvariant()
            || status == nameof(ModelVersionStatus.Failed).ToLowerInvariant());
}

/// <summary>What to register: the metadata of a new version. The checkpoint bytes are passed separately as a stream.</summary>
public sealed record NewModelVersion : VersionMetadata
{
    /// <summary>Declared sha256 (hex) of the checkpoint; verified while uploading.</summary>
    public required string Sha256 { get; init; }

    /// <summary>Declared checkpoint size in bytes; verified while uploading and checked against the size limit first.</summary>
    public required long SizeBytes { get; init; }

    /// <summary>
    /// Makes registration safe to repeat (e.g. the training job id or a CI pipeline key): a second registration with
    /// the same key returns the first version instead of creating another. A FAILED earlier attempt does not count.
    /// </summary>
    public string? IdempotencyKey { get; init; }
}

/// <summary>Result of a registration: the version, and whether it already existed under the idempotency key.</summary>
public sealed record VersionRegistration(ModelVersion Version, bool AlreadyRegistered);

/// <summary>A tag change's outcome: the model or version as now stored, and whether the call changed the tag.</summary>
public sealed record TagChange<T>(T Value, bool Changed);

/// <summary>
/// Result of setting or deleting an alias: the model after the change and where the alias pointed before and after
/// (null = unset). Both come from the same ETag-guarded write, so they are exact even under concurrent movers.
/// </summary>
public sealed record AliasChange(RegisteredModel Model, string Alias, int? PreviousVersion, int? Version)
{
    /// <summary>False when the alias already pointed there (or was already absent): nothing was written.</summary>
    public bool Changed => PreviousVersion != Version;
}

/// <summary>Result of deleting a registered model: the model as it was (with its aliases) and the versions deleted with it.</summary>
public sealed record ModelDeletion(RegisteredModel Model, ImmutableArray<int> DeletedVersions);
