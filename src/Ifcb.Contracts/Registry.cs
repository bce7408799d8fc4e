namespace Ifcb.Contracts;

/// <summary>Event: a model version became READY in the registry.</summary>
public sealed record ModelVersionRegistered(string Model, int Version, string? SourceTrainingJob, string Sha256, string Actor);

/// <summary>Event: an alias now points at <paramref name="Version"/> (null when deleted); <paramref name="PreviousVersion"/> before.</summary>
public sealed record ModelAliasChanged(string Model, string Alias, int? Version, int? PreviousVersion, string Actor);

/// <summary>Event: a model version and its blobs were deleted.</summary>
public sealed record ModelVersionDeleted(string Model, int Version, string Actor);
