using Ifcb.Contracts;

namespace Ifcb.Protos;

/// <summary>A <see cref="ModelRef"/> on the wire: the Registry's <see cref="VersionRef"/> message, both ways.</summary>
public static class ModelRefProtos
{
    /// <summary>NAME and NAME/latest both become a VersionRef with no selector: the newest READY version.</summary>
    public static VersionRef ToVersionRef(this ModelRef reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        var message = new VersionRef { Name = reference.Name };
        if (reference.Version is { } number)
            message.Version = number;
        else if (reference.Alias is { } alias)
            message.Alias = alias;
        return message;
    }

    /// <exception cref="FormatException">The message's fields do not make a reference (empty name, version out of range).</exception>
    public static ModelRef ToModelRef(this VersionRef message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return message.SelectorCase switch
        {
            VersionRef.SelectorOneofCase.Version => ModelRef.ToVersion(message.Name, message.Version),
            VersionRef.SelectorOneofCase.Alias => ModelRef.ToAlias(message.Name, message.Alias),
            _ => ModelRef.ToLatest(message.Name),
        };
    }

    /// <summary>The exact version a resolved <see cref="ModelVersion"/> message names.</summary>
    public static ModelRef ToModelRef(this ModelVersion version)
    {
        ArgumentNullException.ThrowIfNull(version);
        return ModelRef.ToVersion(version.Name, version.Version);
    }
}
