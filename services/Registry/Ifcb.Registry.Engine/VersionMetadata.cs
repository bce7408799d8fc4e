using System.Collections.Immutable;
using Ifcb.Contracts;

namespace Ifcb.Registry.Engine;

/// <summary>
/// What a version says about its model, as registry.proto's <c>VersionMetadata</c> does: declared by a registration
/// (<see cref="NewModelVersion"/>) and kept in the version's document (<see cref="ModelVersion"/>), whose JSON has
/// these fields at its top level.
/// </summary>
public abstract record VersionMetadata
{
    /// <summary>Architecture name as the model zoo knows it, e.g. "inception_v3".</summary>
    public required string Arch { get; init; }

    /// <summary>Class names in output-index order.</summary>
    public ImmutableArray<string> Classes { get; init; } = [];

    public ImgNorm? ImgNorm { get; init; }

    public bool Pretrained { get; init; }

    public ImmutableSortedDictionary<string, double> Metrics { get; init; } = ImmutableSortedDictionary<string, double>.Empty;

    public ImmutableSortedDictionary<string, string> Tags { get; init; } = ImmutableSortedDictionary<string, string>.Empty;

    public string Description { get; init; } = "";

    public VersionSource Source { get; init; } = new();

    public string? DatasetFingerprint { get; init; }

    /// <summary>Square input side in pixels the model expects (neuston's resize); null when not recorded.</summary>
    public int? Resize { get; init; }
}
