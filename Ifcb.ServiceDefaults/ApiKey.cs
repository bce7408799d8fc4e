using System.Security.Cryptography;
using System.Text;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Marks a gRPC method that writes: it changes or creates stored data, queues work, or makes the platform create
/// anything. Callers must present the platform API key. Every RPC implementation carries exactly one of this and
/// <see cref="ReadOnlyRpcAttribute"/> (a test walks them all).
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class RequiresApiKeyAttribute : Attribute;

/// <summary>
/// Marks a gRPC method that only reads, so anyone who can reach the service may call it. A method marked neither this
/// nor <see cref="RequiresApiKeyAttribute"/> is treated as a write: forgetting to classify a new RPC locks it, never
/// opens it.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class ReadOnlyRpcAttribute : Attribute;

/// <summary>What <see cref="ApiKeyVerifier.Check"/> found.</summary>
public enum ApiKeyCheck
{
    /// <summary>The service has no usable key configured; <see cref="ApiKeyVerifier.Problem"/> says what to set.</summary>
    NotConfigured,
    Missing,
    Wrong,
    Valid,
}

/// <summary>
/// The platform API key as a service holds it: only its SHA-256. The AppHost passes <c>Ifcb__ApiKeySha256</c> (so the
/// key itself never appears in a service's environment, which the dashboard displays); deployments that set the plain
/// key as <c>Ifcb__ApiKey</c> keep working. A presented key is hashed and compared in constant time.
/// </summary>
public sealed class ApiKeyVerifier
{
    public const string Sha256ConfigurationKey = "Ifcb:ApiKeySha256";
    public const string PlainConfigurationKey = "Ifcb:ApiKey";

    private readonly byte[]? _expectedDigest;

    public ApiKeyVerifier(IConfiguration configuration)
    {
        var sha256 = configuration[Sha256ConfigurationKey]?.Trim();
        var plain = configuration[PlainConfigurationKey];
        if (!string.IsNullOrEmpty(sha256))
        {
            if (sha256.Length == SHA256.HashSizeInBytes * 2 && sha256.All(char.IsAsciiHexDigit))
                _expectedDigest = Convert.FromHexString(sha256);
            else
                Problem = $"{Sha256ConfigurationKey} must be the key's SHA-256 as 64 hex digits; it has {sha256.Length} characters.";
        }
        else if (!string.IsNullOrEmpty(plain))
        {
            _expectedDigest = Digest(plain);
        }
        else
        {
            Problem = $"This service has no API key configured ({Sha256ConfigurationKey} or {PlainConfigurationKey}); run it under " +
                      "Ifcb.AppHost or set Ifcb__ApiKeySha256 (preferred) or Ifcb__ApiKey.";
        }
    }

    /// <summary>Why no key can be verified, or null when one is configured.</summary>
    public string? Problem { get; }

    /// <summary>The lower-case hex SHA-256 of <paramref name="key"/>'s UTF-8 bytes: what <c>Ifcb__ApiKeySha256</c> holds.</summary>
    public static string Sha256Hex(string key) => Convert.ToHexStringLower(Digest(key));

    public ApiKeyCheck Check(string? presented)
    {
        if (_expectedDigest is null)
            return ApiKeyCheck.NotConfigured;
        if (string.IsNullOrEmpty(presented))
            return ApiKeyCheck.Missing;
        // Both sides are 32-byte digests: the comparison's time says nothing about the key's content or length.
        return CryptographicOperations.FixedTimeEquals(Digest(presented), _expectedDigest) ? ApiKeyCheck.Valid : ApiKeyCheck.Wrong;
    }

    private static byte[] Digest(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));
}

/// <summary>
/// Enforces <see cref="RequiresApiKeyAttribute"/>: the key is sent as metadata <c>x-api-key</c> or
/// <c>authorization: Bearer</c> and checked by <see cref="ApiKeyVerifier"/>. No key → Unauthenticated; a wrong key →
/// PermissionDenied. Methods marked <see cref="ReadOnlyRpcAttribute"/> and the standard gRPC health service stay open;
/// anything unmarked needs the key.
/// </summary>
public sealed class ApiKeyInterceptor(ApiKeyVerifier verifier) : Interceptor
{
    public const string HeaderName = "x-api-key";

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
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Demand(context);
        return continuation(requestStream, responseStream, context);
    }

    /// <summary>The caller's identity for audit logs: "api-key" when it presented the key, else "anonymous".</summary>
    public static string Actor(ServerCallContext context) =>
        PresentedKey(context) is null ? "anonymous" : "api-key";

    private void Demand(ServerCallContext context)
    {
        if (IsOpen(context.GetHttpContext().GetEndpoint()))
            return;

        switch (verifier.Check(PresentedKey(context)))
        {
            case ApiKeyCheck.Valid:
                return;
            case ApiKeyCheck.NotConfigured:
                throw new RpcException(new Status(StatusCode.FailedPrecondition, verifier.Problem!));
            case ApiKeyCheck.Missing:
                throw new RpcException(new Status(StatusCode.Unauthenticated,
                    $"{context.Method} changes data: send the platform API key as metadata '{HeaderName}: KEY' or " +
                    "'authorization: Bearer KEY' (the ifcb CLI reads IFCB_API_KEY)."));
            default:
                throw new RpcException(new Status(StatusCode.PermissionDenied,
                    "The API key is not valid for this platform; use the AppHost's 'api-key' parameter value."));
        }
    }

    private static bool IsOpen(Endpoint? endpoint)
    {
        if (endpoint is null || endpoint.Metadata.GetMetadata<RequiresApiKeyAttribute>() is not null)
            return false;
        if (endpoint.Metadata.GetMetadata<ReadOnlyRpcAttribute>() is not null)
            return true;
        // Orchestrators and load balancers probe grpc.health.v1.Health without credentials.
        return endpoint.Metadata.GetMetadata<GrpcMethodMetadata>()?.ServiceType is { } service
               && typeof(Grpc.Health.V1.Health.HealthBase).IsAssignableFrom(service);
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
    public static IServiceCollection AddIfcbGrpc(this IServiceCollection services, bool detailedErrors)
    {
        services.AddSingleton<ApiKeyVerifier>();
        return services.AddGrpc(o =>
        {
            o.EnableDetailedErrors = detailedErrors;
            o.Interceptors.Add<ErrorInterceptor>();
            o.Interceptors.Add<ApiKeyInterceptor>();
            o.MaxReceiveMessageSize = 16 * 1024 * 1024;
        }).Services;
    }
}
