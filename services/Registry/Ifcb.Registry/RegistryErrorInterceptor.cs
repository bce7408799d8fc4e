using Azure;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Ifcb.Registry.Engine;

namespace Ifcb.Registry;

/// <summary>
/// Turns the engine's <see cref="RegistryException"/> into the gRPC status of the same name, with the engine's
/// message (which says what to fix), and storage outages into Unavailable. One place, so every RPC reports errors the same way.
/// </summary>
public sealed class RegistryErrorInterceptor : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context);
        }
        catch (Exception e) when (ToRpc(e) is { } status)
        {
            throw status;
        }
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(requestStream, context);
        }
        catch (Exception e) when (ToRpc(e) is { } status)
        {
            throw status;
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(request, responseStream, context);
        }
        catch (Exception e) when (ToRpc(e) is { } status)
        {
            throw status;
        }
    }

    /// <summary>The status for an expected failure; null for anything else (a bug), which gRPC reports as Unknown.</summary>
    public static RpcException? ToRpc(Exception exception) => exception switch
    {
        RegistryException e => ToRpc(e),
        // Network failures and 5xx from blob storage: the request may succeed later.
        RequestFailedException { Status: 0 or >= 500 } e => new RpcException(new Status(StatusCode.Unavailable,
            $"Blob storage is unavailable ({e.Status} {e.ErrorCode}); retry later.")),
        _ => null,
    };

    public static RpcException ToRpc(RegistryException e) => new(new Status(e.Kind switch
    {
        RegistryErrorKind.NotFound => StatusCode.NotFound,
        RegistryErrorKind.AlreadyExists => StatusCode.AlreadyExists,
        RegistryErrorKind.InvalidArgument => StatusCode.InvalidArgument,
        RegistryErrorKind.FailedPrecondition => StatusCode.FailedPrecondition,
        RegistryErrorKind.DataLoss => StatusCode.DataLoss,
        RegistryErrorKind.Aborted => StatusCode.Aborted,
        RegistryErrorKind.ResourceExhausted => StatusCode.ResourceExhausted,
        _ => StatusCode.Internal,
    }, e.Message));
}
