using Grpc.Core;
using Ifcb.Models.Weights;
using Ifcb.Platform;

namespace Ifcb.Cli;

/// <summary>Exit codes scripts and CI can rely on; every failure maps to exactly one of them.</summary>
public static class ExitCodes
{
    public const int Success = 0;
    /// <summary>The operation ran and failed: a job failed or was cancelled, a precondition did not hold, bad data.</summary>
    public const int Failed = 1;
    /// <summary>Bad flags or arguments (also the server's InvalidArgument).</summary>
    public const int Usage = 2;
    public const int NotFound = 3;
    /// <summary>No API key, or a wrong one.</summary>
    public const int Auth = 4;
    /// <summary>The server could not be reached or did not answer in time.</summary>
    public const int Unavailable = 5;

    public static int FromStatus(StatusCode code) => code switch
    {
        StatusCode.OK => Success,
        StatusCode.InvalidArgument or StatusCode.OutOfRange => Usage,
        StatusCode.NotFound => NotFound,
        StatusCode.Unauthenticated or StatusCode.PermissionDenied => Auth,
        StatusCode.Unavailable or StatusCode.DeadlineExceeded => Unavailable,
        _ => Failed,
    };

    /// <summary>The exit code for an exception that escaped a command.</summary>
    public static int FromException(Exception exception) => exception switch
    {
        RpcException rpc => FromStatus(rpc.StatusCode),
        // Local engines report limits and names with the platform's error model; map the kind as the server would.
        IfcbException ifcb => FromStatus(ifcb.Kind.ToStatusCode()),
        UsageException or FormatException => Usage,
        WeightsNotFoundException => Failed,
        FileNotFoundException or DirectoryNotFoundException => NotFound,
        // Unknown model, emin > emax, bad split: engines report bad options as ArgumentException.
        ArgumentException => Usage,
        HttpRequestException or System.Net.Sockets.SocketException => Unavailable,
        _ => Failed,
    };
}

/// <summary>
/// A command line that parsed but makes no sense (missing --server, conflicting flags); exits with
/// <see cref="ExitCodes.Usage"/>.
/// </summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>The operation ran and did not succeed (a job failed or was cancelled); its message is printed, exit code 1.</summary>
public sealed class OperationFailedException(string message) : Exception(message);
