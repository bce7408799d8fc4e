using Ifcb.Platform;

namespace Ifcb.Registry.Engine;

/// <summary>
/// One version number of one model, checked once: the blob names that belong to it (see <see cref="RegistryLayout"/>)
/// and the NotFound error that names it, so callers stop pairing a model name and a number by hand.
/// </summary>
internal readonly record struct VersionSlot(string ModelName, int Version)
{
    /// <summary>The slot for caller input: the model name first, then the number (InvalidArgument for either).</summary>
    public static VersionSlot Validated(string modelName, int version)
    {
        RegistryValidation.ModelName(modelName);
        RegistryValidation.VersionNumber(version);
        return new VersionSlot(modelName, version);
    }

    public static VersionSlot Of(ModelVersion version) => new(version.ModelName, version.Version);

    /// <summary>The slot's version.json.</summary>
    public string Document => RegistryLayout.VersionDocument(ModelName, Version);

    /// <summary>Where the slot's checkpoint bytes go.</summary>
    public string Checkpoint => RegistryLayout.Checkpoint(ModelName, Version);

    public IfcbException NotFound() => new(ErrorKind.NotFound, $"Version {Version} of model '{ModelName}' does not exist.");
}
