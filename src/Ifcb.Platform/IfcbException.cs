namespace Ifcb.Platform;

/// <summary>
/// What went wrong, in the terms a caller can act on. Each kind is the gRPC status code of the same name; the services'
/// one error interceptor maps them 1:1, and the CLI maps the status codes to exit codes.
/// </summary>
public enum ErrorKind
{
    /// <summary>
    /// A name, number, pattern or file the caller sent is malformed or out of bounds; the message names it and the
    /// limit.
    /// </summary>
    InvalidArgument,

    /// <summary>The dataset, job, model, version, alias or file does not exist.</summary>
    NotFound,

    /// <summary>Something with that name already exists.</summary>
    AlreadyExists,

    /// <summary>The request is well-formed but the current state forbids it (e.g. a version that is not READY, missing weights).</summary>
    FailedPrecondition,

    /// <summary>
    /// A concurrent writer won (two uploads to one dataset, an alias moved meanwhile); retrying the whole request is
    /// safe.
    /// </summary>
    Aborted,

    /// <summary>A configured limit would be exceeded (checkpoint size, version numbers, upload size).</summary>
    ResourceExhausted,

    /// <summary>Stored or sent bytes do not match their declared hash or size; nothing was stored as valid.</summary>
    DataLoss,

    /// <summary>A dependency (blob storage, the broker, a peer service) is down or overloaded; the same call may succeed later.</summary>
    Unavailable,

    /// <summary>An operation did not finish within its deadline.</summary>
    DeadlineExceeded,

    /// <summary>No credentials were presented for an operation that needs them.</summary>
    Unauthenticated,

    /// <summary>The presented credentials do not allow the operation.</summary>
    PermissionDenied,

    /// <summary>The caller or the platform cancelled the operation.</summary>
    Cancelled,

    /// <summary>A bug or an unexpected state; the message says where to look, never a stack or a host path.</summary>
    Internal,
}

/// <summary>
/// The platform's one exception type for expected failures. The message is for the person who has to fix the problem:
/// it names the field, file or limit and says what to change. Engines may also throw <see cref="ArgumentException"/>
/// (mapped to InvalidArgument) and <see cref="KeyNotFoundException"/> (NotFound); everything else is a fault that
/// <see cref="Faults"/> classifies.
/// </summary>
public sealed class IfcbException : Exception
{
    public IfcbException(ErrorKind kind, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Kind = kind;
    }

    public ErrorKind Kind { get; }

    /// <summary>True when retrying the same operation later may succeed without any change by the caller.</summary>
    public bool IsTransient => Kind is ErrorKind.Unavailable or ErrorKind.Aborted or ErrorKind.DeadlineExceeded;

    public static IfcbException InvalidArgument(string message) => new(ErrorKind.InvalidArgument, message);

    public static IfcbException NotFound(string message) => new(ErrorKind.NotFound, message);

    public static IfcbException FailedPrecondition(string message) => new(ErrorKind.FailedPrecondition, message);

    public static IfcbException Aborted(string message) => new(ErrorKind.Aborted, message);

    public static IfcbException Unavailable(string message, Exception? innerException = null) =>
        new(ErrorKind.Unavailable, message, innerException);
}
