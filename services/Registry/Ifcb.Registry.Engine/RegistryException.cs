namespace Ifcb.Registry.Engine;

/// <summary>
/// What went wrong, in the terms a caller can act on. The gRPC layer maps each kind 1:1 to the status code of the
/// same name, so adding a kind means adding a mapping there.
/// </summary>
public enum RegistryErrorKind
{
    /// <summary>The model, version, alias target or checkpoint does not exist.</summary>
    NotFound,

    /// <summary>A registered model with that name already exists.</summary>
    AlreadyExists,

    /// <summary>A name, tag, filter, page token or registration field is malformed; the message names the field.</summary>
    InvalidArgument,

    /// <summary>The request is well-formed but the current state forbids it (e.g. deleting an aliased version).</summary>
    FailedPrecondition,

    /// <summary>Checkpoint bytes do not match the declared sha256 or size; nothing was stored as READY.</summary>
    DataLoss,

    /// <summary>Too many concurrent writers changed the same blob; retrying the whole request is safe.</summary>
    Aborted,

    /// <summary>A configured limit (checkpoint size, version numbers) would be exceeded.</summary>
    ResourceExhausted,
}

/// <summary>The registry's only exception type for expected failures; the message says what to fix.</summary>
public sealed class RegistryException : Exception
{
    public RegistryException(RegistryErrorKind kind, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Kind = kind;
    }

    public RegistryErrorKind Kind { get; }
}
