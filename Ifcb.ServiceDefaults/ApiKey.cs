using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Microsoft.Extensions.Hosting;

/// <summary>Marks a gRPC method that changes data: callers must present the platform API key.</summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Class)]
public sealed class RequiresApiKeyAttribute : Attribute;

/// <summary>
/// Enforces <see cref="RequiresApiKeyAttribute"/>: the key comes from configuration <c>Ifcb:ApiKey</c> (the AppHost's
/// generated <c>api-key</c> parameter) and is sent as metadata <c>x-api-key</c> or <c>authorization: Bearer</c>.
/// No key → Unauthenticated; a wrong key → PermissionDenied. Reads stay open.
/// </summary>
public sealed class ApiKeyInterceptor(IConfiguration configuration) : Interceptor
{
    public const string HeaderName = "x-api-key";
    public const string ConfigurationKey = "Ifcb:ApiKey";

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Demand(context);
        return continuation(request, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Demand(context);
        return continuation(requestStream, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Demand(context);
        return continuation(request, responseStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Demand(context);
        return continuation(requestStream, responseStream, context);
    }

    /// <summary>The caller's identity for audit logs: "api-key" when it presented the key, else "anonymous".</summary>
    public static string Actor(ServerCallContext context) =>
        PresentedKey(context) is null ? "anonymous" : "api-key";

    private void Demand(ServerCallContext context)
    {
        var endpoint = context.GetHttpContext().GetEndpoint();
        if (endpoint?.Metadata.GetMetadata<RequiresApiKeyAttribute>() is null)
            return;

        var expected = configuration[ConfigurationKey];
        if (string.IsNullOrEmpty(expected))
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                $"This service has no API key configured ({ConfigurationKey}); run it under Ifcb.AppHost or set Ifcb__ApiKey."));
        var presented = PresentedKey(context);
        if (presented is null)
            throw new RpcException(new Status(StatusCode.Unauthenticated,
                $"{context.Method} changes data: send the platform API key as metadata '{HeaderName}: KEY' or " +
                "'authorization: Bearer KEY' (the ifcb CLI reads IFCB_API_KEY)."));
        if (!CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), Encoding.UTF8.GetBytes(expected)))
            throw new RpcException(new Status(StatusCode.PermissionDenied,
                "The API key is not valid for this platform; use the AppHost's 'api-key' parameter value."));
    }

    private static string? PresentedKey(ServerCallContext context)
    {
        var key = context.RequestHeaders.GetValue(HeaderName);
        if (!string.IsNullOrEmpty(key))
            return key;
        var authorization = context.RequestHeaders.GetValue("authorization");
        const string bearer = "Bearer ";
        return authorization is not null && authorization.StartsWith(bearer, StringComparison.OrdinalIgnoreCase)
            ? authorization[bearer.Length..].Trim()
            : null;
    }
}

public static class ApiKeyExtensions
{
    /// <summary>
    /// Adds gRPC with the platform's interceptors: <see cref="ErrorInterceptor"/> (outermost: every failure becomes a
    /// status the same way in every service) and the API-key check (see <see cref="RequiresApiKeyAttribute"/>).
    /// </summary>
    public static IServiceCollection AddIfcbGrpc(this IServiceCollection services, bool detailedErrors) =>
        services.AddGrpc(o =>
        {
            o.EnableDetailedErrors = detailedErrors;
            o.Interceptors.Add<ErrorInterceptor>();
            o.Interceptors.Add<ApiKeyInterceptor>();
            o.MaxReceiveMessageSize = 16 * 1024 * 1024;
        }).Services;
}
