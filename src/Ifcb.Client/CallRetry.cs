using System.Diagnostics;
using System.Net.Sockets;
using Grpc.Core;

namespace Ifcb.Client;

/// <summary>One retry about to happen: what failed, which attempt it was, and how long the client waits first.</summary>
public sealed record RetryNotice(string Call, Exception Failure, int FailedAttempt, int MaxAttempts, TimeSpan Delay)
{
    public override string ToString() =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{Call}: {CallRetry.ShortReason(Failure)}; retrying in {Delay.TotalSeconds:0.0} s " +
            $"(attempt {FailedAttempt + 1} of {MaxAttempts})");
}

/// <summary>
/// How a client retries a call that failed for a reason that may pass by itself (a service restarting, a crowded
/// server, a dropped connection): exponential backoff with jitter, a bounded number of attempts and a bounded total
/// time. Which calls may be retried at all is the caller's decision (<see cref="CallPolicyInterceptor"/>: reads, and
/// writes that carry an idempotency key).
/// </summary>
/// <remarks>
/// The defaults: at most 5 attempts; waits of 0.25, 0.5, 1 and 2 s (doubling, capped at 4 s), each drawn uniformly
/// between half and all of that so that many clients failing together (24 CI jobs registering at once) do not come
/// back together; no attempt starts and no attempt runs past 60 s after the first began. A refused connection (the
/// service is not running) is therefore reported after at most 3.75 s of waiting, and a call that hangs is given up
/// after 60 s (two attempts of the default 30 s deadline).
/// </remarks>
public sealed record CallRetry
{
    /// <summary>The policy of the ifcb CLI (see the remarks on <see cref="CallRetry"/> for the numbers).</summary>
    public static CallRetry Default { get; } = new();

    /// <summary>One attempt, no retries.</summary>
    public static CallRetry None { get; } = new() { MaxAttempts = 1 };

    /// <summary>Attempts in all, the first included.</summary>
    public int MaxAttempts { get; init; } = 5;

    /// <summary>The wait before the first retry; each later wait doubles (see <see cref="BackoffMultiplier"/>).</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(0.25);

    public double BackoffMultiplier { get; init; } = 2;

    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(4);

    /// <summary>Total time from the start of the first attempt after which no attempt starts or continues.</summary>
    public TimeSpan Budget { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Told about each retry before its wait (the CLI prints it on stderr, so CI logs show what happened).</summary>
    public Action<RetryNotice>? OnRetry { get; init; }

    /// <summary>The status codes worth retrying: the service is down or restarting, did not answer in time, or is crowded.</summary>
    public static bool IsTransient(StatusCode code) =>
        code is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.ResourceExhausted;

    /// <summary>
    /// True when the call failed before any of it reached a server (the connection could not be made), so even a
    /// write without an idempotency key can safely be sent again.
    /// </summary>
    public static bool NeverReachedServer(RpcException exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return exception.StatusCode == StatusCode.Unavailable && ConnectFailure(exception.Status.DebugException) is not null;
    }

    /// <summary>
    /// The failure as the status it stands for. Grpc.Net.Client reports a connection lost under a call (reset, or its
    /// keep-alive ping unanswered: a dead server) as Internal with the transport's exception attached, though it is
    /// the transient "the service is unavailable" of the gRPC spec; such failures become Unavailable here so they are
    /// retried and explained like one. Statuses a server sent are returned unchanged.
    /// </summary>
    public static RpcException Normalize(RpcException failure)
    {
        ArgumentNullException.ThrowIfNull(failure);
        if (failure.StatusCode is not (StatusCode.Internal or StatusCode.Unknown) || !IsTransportFailure(failure.Status.DebugException))
            return failure;
        return new RpcException(new Status(StatusCode.Unavailable, failure.Status.Detail, failure.Status.DebugException),
            failure.Trailers, failure.Message);
    }

    private static bool IsTransportFailure(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is HttpProtocolException or HttpIOException or HttpRequestException or SocketException or IOException)
                return true;
        }
        return false;
    }

    /// <summary>Why a connection could not be made ("connection refused", …), or null when the failure was not in connecting.</summary>
    public static string? ConnectFailure(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is SocketException socket)
                return socket.SocketErrorCode switch
                {
                    SocketError.ConnectionRefused => "connection refused",
                    SocketError.HostNotFound or SocketError.NoData or SocketError.TryAgain => "host not found",
                    SocketError.HostUnreachable or SocketError.NetworkUnreachable or SocketError.HostDown or SocketError.NetworkDown =>
                        "host unreachable",
                    SocketError.TimedOut => "no answer to connect",
                    _ => "cannot connect: " + socket.SocketErrorCode,
                };
            if (e is HttpRequestException
                { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError } http)
                return ConnectFailureBelow(http)
                    ?? (http.HttpRequestError == HttpRequestError.NameResolutionError ? "host not found" : "cannot connect");
        }
        return null;
    }

    private static string? ConnectFailureBelow(HttpRequestException http)
    {
        for (var e = http.InnerException; e is not null; e = e.InnerException)
        {
            if (e is SocketException)
                return ConnectFailure(e);
            if (e is TimeoutException or OperationCanceledException)
                return "no answer to connect";
        }
        return null;
    }

    /// <summary>A short reason for a notice: the status code and the server's message or the connect failure.</summary>
    public static string ShortReason(Exception failure) => failure switch
    {
        RpcException rpc when ConnectFailure(rpc.Status.DebugException) is { } connect => $"{rpc.StatusCode} ({connect})",
        RpcException rpc when string.IsNullOrWhiteSpace(rpc.Status.Detail) => rpc.StatusCode.ToString(),
        RpcException rpc => $"{rpc.StatusCode} ({FirstLine(rpc.Status.Detail)})",
        _ => failure.GetType().Name + ": " + FirstLine(failure.Message),
    };

    /// <summary>The wait before the attempt after <paramref name="failedAttempt"/> (1-based): exponential, capped, jittered.</summary>
    public TimeSpan Backoff(int failedAttempt)
    {
        var ceiling = InitialBackoff.TotalSeconds * Math.Pow(BackoffMultiplier, Math.Max(0, failedAttempt - 1));
        ceiling = Math.Min(ceiling, MaxBackoff.TotalSeconds);
        return TimeSpan.FromSeconds(ceiling * (0.5 + (Random.Shared.NextDouble() * 0.5)));
    }

    /// <summary>The wait before the next attempt, or null when attempts or time are used up.</summary>
    public TimeSpan? NextDelay(int failedAttempt, TimeSpan elapsed)
    {
        if (failedAttempt >= MaxAttempts)
            return null;
        var delay = Backoff(failedAttempt);
        return elapsed + delay < Budget ? delay : null;
    }

    /// <summary>
    /// Runs <paramref name="attempt"/> until it succeeds, fails with an exception <paramref name="retryable"/> rejects,
    /// or the attempts or the budget are used up (then the last failure is thrown as it was). The attempt is given its
    /// number (1-based) and the time left in the budget, to bound its own deadline.
    /// </summary>
    public async Task<T> ExecuteAsync<T>(string call, Func<int, TimeSpan, Task<T>> attempt, Func<Exception, bool> retryable,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(attempt);
        ArgumentNullException.ThrowIfNull(retryable);
        var clock = Stopwatch.StartNew();
        for (var number = 1; ; number++)
        {
            TimeSpan delay;
            try
            {
                return await attempt(number, Budget - clock.Elapsed).ConfigureAwait(false);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested && retryable(e)
                && NextDelay(number, clock.Elapsed) is { } next)
            {
                delay = next;
                OnRetry?.Invoke(new RetryNotice(call, e, number, MaxAttempts, delay));
            }
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
        }
    }

    private static string FirstLine(string text)
    {
        var line = text.Trim().Split('\n', 2)[0].Trim();
        return line.Length <= 200 ? line : line[..200] + "…";
    }
}
