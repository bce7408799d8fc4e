using System.Globalization;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine;

/// <summary>
/// Names one version: by number (<c>name/3</c>), by alias (<c>name@production</c>) or the newest READY one
/// (<c>name/latest</c>). An optional <c>models:/</c> prefix (MLflow's URI form) is accepted.
/// </summary>
public sealed record ModelVersionReference
{
    private ModelVersionReference(string modelName, int? version, string? alias)
    {
        ModelName = modelName;
        Version = version;
        Alias = alias;
    }

    public string ModelName { get; }

    /// <summary>The version number, or null for an alias or "latest" reference.</summary>
    public int? Version { get; }

    /// <summary>The alias, or null for a number or "latest" reference.</summary>
    public string? Alias { get; }

    public bool IsLatest => Version is null && Alias is null;

    public static ModelVersionReference ByNumber(string modelName, int version)
    {
        RegistryValidation.ModelName(modelName);
        RegistryValidation.VersionNumber(version);
        return new(modelName, version, null);
    }

    public static ModelVersionReference ByAlias(string modelName, string alias)
    {
        RegistryValidation.ModelName(modelName);
        RegistryValidation.Alias(alias);
        return new(modelName, null, alias);
    }

    public static ModelVersionReference Latest(string modelName)
    {
        RegistryValidation.ModelName(modelName);
        return new(modelName, null, null);
    }

    public static ModelVersionReference Parse(string reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        var text = reference.StartsWith("models:/", StringComparison.Ordinal) ? reference["models:/".Length..] : reference;

        var at = text.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            return ByAlias(text[..at], text[(at + 1)..]);
        }

        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            var name = text[..slash];
            var selector = text[(slash + 1)..];
            if (selector == "latest")
            {
                return Latest(name);
            }

            if (int.TryParse(selector, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
            {
                return ByNumber(name, number);
            }
        }

        throw new IfcbException(ErrorKind.InvalidArgument,
            $"Model reference '{reference}' must look like 'name/3', 'name@alias' or 'name/latest'.");
    }

    public override string ToString() =>
        Version is { } number ? $"{ModelName}/{number}" : Alias is { } alias ? $"{ModelName}@{alias}" : $"{ModelName}/latest";
}
