using System.Net.Sockets;
using System.Text.RegularExpressions;
using Azure;
using Grpc.Core;

namespace Ifcb.Platform;

/// <summary>
/// Sorts failures into the two kinds that decide what a job does: <em>transient</em> (storage, broker or a peer
/// service is down or slow: wait and retry, the job stays RUNNING) and <em>permanent</em> (the job's own fault: bad
/// data, bad options, a bug: it fails with a one-line reason). Also turns any exception into that one-line reason.
/// </summary>
public static partial class Faults
{
    /// <summary>
    /// True when the same operation may succeed later with no change by the caller: blob storage answering 408/429/5xx
    /// or not at all, a refused or reset connection, a peer answering Unavailable/DeadlineExceeded/Aborted, a timeout.
    /// </summary>
    public static bool IsTransient(Exception exception) => exception switch
    {
        IfcbException e => e.IsTransient,
        RequestFailedException e => e.Status is 0 or 408 or 429 or >= 500,
        RpcException e => e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Aborted,
        HttpRequestException or SocketException or TimeoutException => true,
        IOException e when e.InnerException is SocketException or HttpRequestException => true,
        AggregateException e => e.InnerExceptions.Count > 0 && e.InnerExceptions.All(IsTransient),
        _ => IsWrappedTransient(exception),
    };

    // Azure's SDK wraps a transport failure that outlived its own retries in a RequestFailedException (status 0) or an
    // AggregateException of them; anything else with a transient inner exception counts too (a wrapper of ours).
    private static bool IsWrappedTransient(Exception exception) =>
        exception.InnerException is { } inner && exception is not OperationCanceledException && IsTransient(inner);

    /// <summary>
    /// The reason to record for a user: the exception's message, first line only, with host paths shortened to their
    /// last two segments (a worker's cache folder means nothing to the user and tells an attacker about the host).
    /// Expected exception types keep their message as is; others are prefixed with their type name.
    /// </summary>
    public static string Reason(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        var message = Message(exception);
        var expected = exception is IfcbException or ArgumentException or InvalidDataException or KeyNotFoundException
            or InvalidOperationException or FileNotFoundException or DirectoryNotFoundException or NotSupportedException
            or FormatException or RpcException;
        if (exception is RpcException rpc)
            message = $"{rpc.StatusCode}: {FirstLine(rpc.Status.Detail)}";
        var reason = expected ? message : $"{exception.GetType().Name}: {message}";
        return ScrubPaths(reason);
    }

    /// <summary>
    /// An exception's message for the caller who sent the input it is about: the first line, without .NET's
    /// " (Parameter 'x')" suffix (the message already names the field), paths left as the caller wrote them.
    /// </summary>
    public static string Message(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return ParameterSuffix().Replace(FirstLine(exception.Message), "");
    }

    /// <summary>Replaces every absolute path in <paramref name="text"/> by "…/" and its last two segments.</summary>
    public static string ScrubPaths(string text) => AbsolutePath().Replace(text, match =>
    {
        var segments = match.Value.Split('/', StringSplitOptions.RemoveEmptyEntries);
        return segments.Length <= 2 ? match.Value : "…/" + string.Join('/', segments[^2..]);
    });

    private static string FirstLine(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
            return "(no message)";
        var line = text.Trim().Split('\n', 2)[0].Trim();
        return line.Length <= 1000 ? line : line[..1000] + "…";
    }

    [GeneratedRegex(@"\s*\(Parameter '[^']*'\)$")]
    private static partial Regex ParameterSuffix();

    // A path starts at a slash that follows whitespace, a quote, '(' or the start, and has at least two segments.
    [GeneratedRegex(@"(?<=^|[\s'""(=])/(?:[^\s'""/:]+/)+[^\s'"":,;)]*")]
    private static partial Regex AbsolutePath();
}
