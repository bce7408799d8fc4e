using Grpc.Core;

namespace Ifcb.Platform;

/// <summary>
/// Each <see cref="ErrorKind"/> is the gRPC status code of the same name (services map errors with it, the CLI exit
/// codes too).
/// </summary>
public static class ErrorKindStatus
{
    public static StatusCode ToStatusCode(this ErrorKind kind) => kind switch
    {
        ErrorKind.InvalidArgument => StatusCode.InvalidArgument,
        ErrorKind.NotFound => StatusCode.NotFound,
        ErrorKind.AlreadyExists => StatusCode.AlreadyExists,
        ErrorKind.FailedPrecondition => StatusCode.FailedPrecondition,
        ErrorKind.Aborted => StatusCode.Aborted,
        ErrorKind.ResourceExhausted => StatusCode.ResourceExhausted,
        ErrorKind.DataLoss => StatusCode.DataLoss,
        ErrorKind.Unavailable => StatusCode.Unavailable,
        ErrorKind.DeadlineExceeded => StatusCode.DeadlineExceeded,
        ErrorKind.Unauthenticated => StatusCode.Unauthenticated,
        ErrorKind.PermissionDenied => StatusCode.PermissionDenied,
        ErrorKind.Cancelled => StatusCode.Cancelled,
        _ => StatusCode.Internal,
    };
}
