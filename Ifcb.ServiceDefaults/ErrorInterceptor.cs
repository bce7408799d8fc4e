using System.Diagnostics;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Ifcb.Platform;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// The one place where every service turns failures into gRPC statuses, so that all three report errors alike:
/// <list type="bullet">
/// <item><see cref="IfcbException"/> → the status of the same name as its <see cref="ErrorKind"/>, with its message;</item>
/// <item>engine validation (<see cref="ArgumentException"/>) → InvalidArgument; <see cref="KeyNotFoundException"/> → NotFound;</item>
/// <item>a transient fault (storage, broker or peer down, see <see cref="Faults.IsTransient"/>) → Unavailable, saying to retry;</item>
/// <item>the caller cancelling → Cancelled;</item>
/// <item>anything else (a bug) → Internal with the trace id to look up, never a stack or a host path; the full exception is logged.</item>
/// </list>
/// <see cref="RpcException"/>s thrown on purpose pass through unchanged.
/// </summary>
public sealed class ErrorInterceptor(ILogger<ErrorInterceptor> logger) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context);
        }
        catch (Exception e) when (e is not RpcException)
        {
            throw ToRpc(e, context);
        }
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(requestStream, context);
        }
        catch (Exception e) when (e is not RpcException)
        {
            throw ToRpc(e, context);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(request, responseStream, context);
        }
        catch (Exception e) when (e is not RpcException)
        {
            throw ToRpc(e, context);
        }
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(requestStream, responseStream, context);
        }
        catch (Exception e) when (e is not RpcException)
        {
            throw ToRpc(e, context);
        }
    }

    private RpcException ToRpc(Exception exception, ServerCallContext context)
    {
        var status = ToStatus(exception, context.CancellationToken.IsCancellationRequested);
        if (status.StatusCode == StatusCode.Internal)
        {
            var traceId = Activity.Current?.TraceId.ToString() ?? "none";
            logger.LogError(exception, "{Method} failed unexpectedly (trace {TraceId})", context.Method, traceId);
            status = new Status(StatusCode.Internal, $"{context.Method} failed with an internal error ({exception.GetType().Name}); " +
                $"the service logged it with trace id {traceId}.");
        }
        else if (status.StatusCode == StatusCode.Unavailable)
        {
            logger.LogWarning(exception, "{Method}: a dependency is unavailable", context.Method);
        }
        return new RpcException(status);
    }

    /// <summary>The status for an exception (Internal for anything unexpected; the caller replaces that message).</summary>
    public static Status ToStatus(Exception exception, bool callCancelled = false) => exception switch
    {
        IfcbException e => new Status(e.Kind.ToStatusCode(), e.Message),
        OperationCanceledException when callCancelled => new Status(StatusCode.Cancelled, "The call was cancelled."),
        _ when Faults.IsTransient(exception) => new Status(StatusCode.Unavailable,
            $"A dependency of this service is unavailable ({Faults.Reason(exception)}); retry in a few seconds."),
        // The caller's own input, quoted back as given (a job's reasons, by contrast, are scrubbed of host paths).
        ArgumentException e when e is not ArgumentNullException => new Status(StatusCode.InvalidArgument, Faults.Message(e)),
        KeyNotFoundException e => new Status(StatusCode.NotFound, Faults.Message(e)),
        _ => new Status(StatusCode.Internal, exception.GetType().Name),
    };
}
