using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Ifcb.Client;

/// <summary>
/// What every call from a client to one platform service gets, so that no command has to remember it:
/// <list type="bullet">
/// <item>a deadline: each attempt of a unary call has <c>callTimeout</c> (default 30 s), never more than is left of
/// the retry budget; streams (watches, downloads, uploads) carry as much data or last as long as the job, so they
/// have no overall deadline and the channel's HTTP/2 keep-alive pings notice a dead server instead;</item>
/// <item>retries of unary calls that failed for a transient reason (<see cref="CallRetry.IsTransient"/>) when the
/// call is idempotent: a read (<see cref="ReadMethods"/>) or a request with a non-empty <c>idempotency_key</c>. Other
/// writes are sent again only when the connection could not be made at all (nothing reached the server);</item>
/// <item>failures explained in words: the service, its address, the call, and what to check
/// (<see cref="ServiceCallException"/>); never an empty message.</item>
/// </list>
/// </summary>
/// <remarks>
/// Why not Grpc.Net.Client's own retry policy (ServiceConfig): its deadline covers all attempts together, so a call
/// that hung (DeadlineExceeded: the live failure of peer discovery with 24 clients at once) can never be retried with
/// a fresh deadline; and it buffers at most 1 MiB of a stream, so checkpoint uploads would not be retried anyway.
/// The call layer awaits with ConfigureAwait(false), unlike the services:
/// <see cref="BlockingUnaryCall{TRequest, TResponse}"/> blocks on the same retry loop, and an SDK cannot know whether
/// its caller's thread has a synchronization context (a UI's, xunit's) that would then never run the continuation.
/// </remarks>
/// <param name="service">The service as users know it (Training, NormStats, Registry).</param>
/// <param name="address">Its URL, as configured or discovered.</param>
public sealed class CallPolicyInterceptor(string service, string address, CallRetry retry, TimeSpan callTimeout) : Interceptor
{
    /// <summary>The deadline of one attempt of a unary call unless the client sets another (ifcb --timeout).</summary>
    public static readonly TimeSpan DefaultCallTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The RPCs that change nothing, by "Service.Method". Listed rather than guessed from a name prefix so that a new
    /// RPC is not retried until someone decides it is safe (a test checks every RPC of the contracts is either here
    /// or named like a write).
    /// </summary>
    public static readonly IReadOnlySet<string> ReadMethods = new HashSet<string>(StringComparer.Ordinal)
    {
        "Training.GetInfo", "Training.GetJob", "Training.WatchJob", "Training.ListJobs", "Training.ListArtifacts",
        "Training.DownloadArtifact",
        "Runs.GetRun", "Runs.WatchRun", "Runs.ListRunOutputs", "Runs.DownloadRunOutput",
        "Sweeps.GetSweep", "Sweeps.WatchSweep", "Sweeps.ListSweeps",
        "Datasets.List", "Datasets.Describe",
        "NormStats.GetInfo", "NormStats.Get", "NormStats.Watch", "NormStats.Lookup",
        "Registry.GetInfo", "Registry.GetModel", "Registry.ListModels", "Registry.GetVersion", "Registry.SearchVersions",
        "Registry.SearchModels",
        "Registry.DownloadCheckpoint", "Registry.GetHistory", "Registry.ListEvaluations",
        "Registry.GetLineage", "Registry.ListApiKeys",
        "Registry.ListWebhooks", "Registry.ListWebhookDeliveries",
        // Exporting writes only the registry's own cache of a deterministic graph: repeating it is safe.
        "Registry.ExportVersion",
    };

    /// <summary>What a message about a service that seems down ends with.</summary>
    public const string DownHint = "; is the platform running? (ifcb status)";

    /// <summary>The field that makes a write safe to repeat: the server returns the first result for a repeated key.</summary>
    public const string IdempotencyKeyField = "idempotency_key";

    private readonly TimeSpan _callTimeout = callTimeout > TimeSpan.Zero ? callTimeout : DefaultCallTimeout;

    /// <summary>"Registry.SearchVersions" for /ifcb.v1.Registry/SearchVersions.</summary>
    public static string DisplayName(IMethod method)
    {
        ArgumentNullException.ThrowIfNull(method);
        return $"{method.ServiceName[(method.ServiceName.LastIndexOf('.') + 1)..]}.{method.Name}";
    }

    /// <summary>True when sending the request twice has the effect of sending it once.</summary>
    public static bool IsIdempotent(IMethod method, object? request) =>
        ReadMethods.Contains(DisplayName(method)) || HasIdempotencyKey(request);

    private static bool HasIdempotencyKey(object? request) =>
        request is IMessage message
        && message.Descriptor.FindFieldByName(IdempotencyKeyField) is { FieldType: FieldType.String } field
        && field.Accessor.GetValue(message) is string { Length: > 0 };

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(TRequest request,
        ClientInterceptorContext<TRequest, TResponse> context, AsyncUnaryCallContinuation<TRequest, TResponse> continuation)
    {
        AsyncUnaryCall<TResponse>? current = null;
        var response = SendAsync(request, context, attemptContext =>
        {
            var call = continuation(request, attemptContext);
            current = call;
            return call.ResponseAsync;
        });
        return new AsyncUnaryCall<TResponse>(response, HeadersAsync(response, () => current!), () => current!.GetStatus(),
            () => current!.GetTrailers(), () => current?.Dispose());
    }

    public override TResponse BlockingUnaryCall<TRequest, TResponse>(TRequest request,
        ClientInterceptorContext<TRequest, TResponse> context, BlockingUnaryCallContinuation<TRequest, TResponse> continuation) =>
        SendAsync(request, context, attemptContext => Task.FromResult(continuation(request, attemptContext))).GetAwaiter().GetResult();

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(TRequest request,
        ClientInterceptorContext<TRequest, TResponse> context, AsyncServerStreamingCallContinuation<TRequest, TResponse> continuation)
    {
        var call = continuation(request, context);
        var name = DisplayName(context.Method);
        return new AsyncServerStreamingCall<TResponse>(
            new ExplainingReader<TResponse>(call.ResponseStream, e => Explain(name, CallRetry.Normalize(e), 1, TimeSpan.Zero, null)),
            call.ResponseHeadersAsync, call.GetStatus, call.GetTrailers, call.Dispose);
    }

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(
        ClientInterceptorContext<TRequest, TResponse> context, AsyncClientStreamingCallContinuation<TRequest, TResponse> continuation)
    {
        var call = continuation(context);
        var name = DisplayName(context.Method);
        return new AsyncClientStreamingCall<TRequest, TResponse>(call.RequestStream, ExplainedAsync(call.ResponseAsync, name),
            call.ResponseHeadersAsync, call.GetStatus, call.GetTrailers, call.Dispose);
    }

    private async Task<TResponse> SendAsync<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context,
        Func<ClientInterceptorContext<TRequest, TResponse>, Task<TResponse>> send)
        where TRequest : class
        where TResponse : class
    {
        var name = DisplayName(context.Method);
        var idempotent = IsIdempotent(context.Method, request);
        var callerDeadline = context.Options.Deadline;
        var clock = Stopwatch.StartNew();
        var attempts = 0;
        var attemptTimeout = _callTimeout;
        try
        {
            return await retry.ExecuteAsync(name, (number, remaining) =>
            {
                attempts = number;
                // Never past the budget: the last attempt gets what is left of it (at least a moment, to be sent at all).
                attemptTimeout = remaining < _callTimeout
                    ? TimeSpan.FromTicks(Math.Max(remaining.Ticks, TimeSpan.FromMilliseconds(100).Ticks))
                    : _callTimeout;
                var deadline = DateTime.UtcNow + attemptTimeout;
                if (callerDeadline is { } caller && caller < deadline)
                    deadline = caller;
                var options = context.Options.WithDeadline(deadline);
                return NormalizedAsync(() =>
                    send(new ClientInterceptorContext<TRequest, TResponse>(context.Method, context.Host, options)));
            }, failure => failure is RpcException rpc
                && CallRetry.IsTransient(rpc.StatusCode)
                && (idempotent || CallRetry.NeverReachedServer(rpc))
                && (callerDeadline is null || DateTime.UtcNow < callerDeadline), context.Options.CancellationToken).ConfigureAwait(false);
        }
        catch (RpcException e) when (e is not ServiceCallException)
        {
            throw Explain(name, e, attempts, clock.Elapsed, attemptTimeout);
        }
    }

    private static async Task<T> NormalizedAsync<T>(Func<Task<T>> send)
    {
        try
        {
            return await send().ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            var normalized = CallRetry.Normalize(e);
            if (ReferenceEquals(normalized, e))
                throw;
            throw normalized;
        }
    }

    private static async Task<Metadata> HeadersAsync<TResponse>(Task<TResponse> response, Func<AsyncUnaryCall<TResponse>> current)
    {
        // The headers that count are the last attempt's, known once the call has ended.
        try
        {
            await response.ConfigureAwait(false);
        }
        catch (RpcException)
        {
        }
        return await current().ResponseHeadersAsync.ConfigureAwait(false);
    }

    private async Task<TResponse> ExplainedAsync<TResponse>(Task<TResponse> response, string name)
    {
        try
        {
            return await response.ConfigureAwait(false);
        }
        catch (RpcException e) when (e is not ServiceCallException)
        {
            throw Explain(name, CallRetry.Normalize(e), 1, TimeSpan.Zero, null);
        }
    }

    /// <summary>
    /// The failure in words, when its status alone would not tell a user what happened: the service is unreachable,
    /// did not answer in time, or answered without a message. Other failures (NotFound, InvalidArgument, … with the
    /// server's message) are returned as they are.
    /// </summary>
    public RpcException Explain(string call, RpcException failure, int attempts, TimeSpan elapsed, TimeSpan? timeout)
    {
        ArgumentNullException.ThrowIfNull(failure);
        var detail = failure.Status.Detail;
        var blank = string.IsNullOrWhiteSpace(detail);
        var tries = attempts > 1
            ? string.Create(CultureInfo.InvariantCulture, $"; {attempts} attempts in {elapsed.TotalSeconds:0.0} s")
            : "";
        var what = failure.StatusCode switch
        {
            StatusCode.Unavailable when CallRetry.ConnectFailure(failure.Status.DebugException) is { } connect =>
                $"is unavailable ({connect}{tries}){DownHint}",
            // A client-side failure after connecting: the connection was lost (reset, or keep-alive pings unanswered).
            StatusCode.Unavailable when failure.Status.DebugException is { } lost =>
                $"is unavailable (the connection was lost during {call}: {FirstLine(lost.Message)}{tries}){DownHint}",
            StatusCode.Unavailable =>
                $"is unavailable ({call} answered Unavailable{(blank ? " without a reason" : ": " + FirstLine(detail))}{tries})",
            StatusCode.DeadlineExceeded when blank && timeout is { } limit =>
                $"did not answer {call} within {Seconds(limit)}{tries}{DownHint}",
            StatusCode.DeadlineExceeded when blank =>
                $"did not answer {call} in time{tries}{DownHint}",
            StatusCode.DeadlineExceeded =>
                $"answered {call} with DeadlineExceeded: {FirstLine(detail)}{tries}",
            _ when blank => $"answered {call} with {failure.StatusCode} and no message{tries}",
            _ => null,
        };
        return what is null
            ? failure
            : new ServiceCallException(service, address, call, attempts, failure, $"the {service} service at {address} {what}");
    }

    private static string Seconds(TimeSpan span) => string.Create(CultureInfo.InvariantCulture, $"{span.TotalSeconds:0.###} s");

    private static string FirstLine(string text)
    {
        var line = text.Trim().Split('\n', 2)[0].Trim();
        return line.Length <= 300 ? line : line[..300] + "…";
    }

    /// <summary>A server stream whose failures are normalized and explained like those of unary calls.</summary>
    private sealed class ExplainingReader<T>(IAsyncStreamReader<T> inner, Func<RpcException, RpcException> explain) : IAsyncStreamReader<T>
    {
        public T Current => inner.Current;

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            try
            {
                return await inner.MoveNext(cancellationToken).ConfigureAwait(false);
            }
            catch (RpcException e) when (e is not ServiceCallException)
            {
                throw explain(e);
            }
        }
    }
}
