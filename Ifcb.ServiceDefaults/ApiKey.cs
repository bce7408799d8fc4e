using System.Security.Cryptography;
using System.Text;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Ifcb.Platform;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Marks a gRPC method that writes: it changes or creates stored data, queues work, or makes the platform create
/// anything. Callers must present a writer or admin key (the platform's bootstrap key is an admin). Every RPC
/// implementation carries exactly one of this, <see cref="RequiresAdminAttribute"/> and <see cref="ReadOnlyRpcAttribute"/>
/// (a test walks them all).
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class RequiresApiKeyAttribute : Attribute;

/// <summary>
/// Marks a gRPC method that manages access itself (API keys, webhooks): callers must present an admin key, such as the
/// platform's bootstrap key.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class RequiresAdminAttribute : Attribute;

/// <summary>
/// Marks a gRPC method that only reads, so anyone who can reach the service may call it (unless the service demands a
/// key for reads, see <see cref="ApiKeyReadPolicy"/>). A method marked none of the three attributes is treated as an
/// admin method: forgetting to classify a new RPC locks it, never opens it.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class ReadOnlyRpcAttribute : Attribute;

/// <summary>
/// Who made a call, as the key check established it: <see cref="Bootstrap"/> for the platform key, "key:NAME" with its
/// role for a named key. The name is what audit logs record.
/// </summary>
public sealed record ApiPrincipal(string Name, ApiRole Role)
{
    /// <summary>The actor recorded for a call that presented no key (a read, when reads are open).</summary>
    public const string AnonymousName = "anonymous";

    /// <summary>The platform's own key (the AppHost's 'api-key' parameter): an admin.</summary>
    public static ApiPrincipal Bootstrap { get; } = new("bootstrap", ApiRole.Admin);
}

/// <summary>What a <see cref="INamedKeyResolver"/> found for a presented key.</summary>
/// <param name="Principal">The key's principal when it may be used.</param>
/// <param name="Refusal">Why a key the service knows may not be used (revoked), in words for the caller.</param>
public sealed record NamedKeyResolution(ApiPrincipal? Principal, string? Refusal = null)
{
    /// <summary>Not a key this service knows.</summary>
    public static NamedKeyResolution Unknown { get; } = new(Principal: null);
}

/// <summary>
/// Named keys a service accepts besides the bootstrap key; only the Registry registers one (it stores the keys), so
/// Training and NormStats accept only the bootstrap key. Asked on every call that needs a key and does not present the
/// bootstrap key, so a revocation takes effect at once.
/// </summary>
public interface INamedKeyResolver
{
    Task<NamedKeyResolution> ResolveAsync(string presentedKey, CancellationToken cancellationToken);
}

/// <summary>Whether [ReadOnlyRpc] methods need a key too (of any role); the gRPC health service stays open.</summary>
public sealed record ApiKeyReadPolicy(bool RequireKeyForReads);

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
/// Enforces the attributes above: the key is sent as metadata <c>x-api-key</c> or <c>authorization: Bearer</c> and is
/// either the bootstrap key (checked by <see cref="ApiKeyVerifier"/>: an admin) or a named key (asked of the service's
/// <see cref="INamedKeyResolver"/>, if it has one). No key → Unauthenticated; an unknown or revoked key, or one whose
/// role is too low → PermissionDenied. The principal is resolved once per call and kept for it: <see cref="Actor"/>.
/// </summary>
public sealed class ApiKeyInterceptor(ApiKeyVerifier verifier, INamedKeyResolver? namedKeys = null, ApiKeyReadPolicy? readPolicy = null)
    : Interceptor
{
    public const string HeaderName = "x-api-key";

    private static readonly object PrincipalItem = new();

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        await DemandAsync(context);
        return await continuation(request, context);
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        await DemandAsync(context);
        return await continuation(requestStream, context);
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        await DemandAsync(context);
        await continuation(request, responseStream, context);
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        await DemandAsync(context);
        await continuation(requestStream, responseStream, context);
    }

    /// <summary>
    /// The caller's identity for audit logs: "bootstrap" for the platform key, "key:NAME" for a named key, "anonymous"
    /// for a call that needed no key.
    /// </summary>
    public static string Actor(ServerCallContext context) => Principal(context)?.Name ?? ApiPrincipal.AnonymousName;

    /// <summary>The principal the key check established for this call; null when the call needed no key.</summary>
    public static ApiPrincipal? Principal(ServerCallContext context) =>
        context.GetHttpContext().Items.TryGetValue(PrincipalItem, out var principal) ? principal as ApiPrincipal : null;

    private async Task DemandAsync(ServerCallContext context)
    {
        var httpContext = context.GetHttpContext();
        if (Needed(httpContext.GetEndpoint()) is not { } needed)
            return;

        var presented = PresentedKey(context);
        var principal = verifier.Check(presented) switch
        {
            ApiKeyCheck.Valid => ApiPrincipal.Bootstrap,
            ApiKeyCheck.NotConfigured => throw new RpcException(new Status(StatusCode.FailedPrecondition, verifier.Problem!)),
            ApiKeyCheck.Missing => throw new RpcException(new Status(StatusCode.Unauthenticated,
                $"{context.Method} {What(needed)}: send an API key as metadata '{HeaderName}: KEY' or 'authorization: Bearer KEY' " +
                "(the ifcb CLI reads IFCB_API_KEY).")),
            _ => await NamedAsync(presented!, context.CancellationToken),
        };
        if (!principal.Role.Allows(needed))
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied,
                $"{context.Method} needs {Article(needed)} {needed.Name()} key{(needed == ApiRole.Admin ? "" : " or better")}; " +
                $"'{principal.Name}' is {Article(principal.Role)} {principal.Role.Name()} key. Ask an admin for a key with that role."));
        }

        httpContext.Items[PrincipalItem] = principal;
    }

    private async Task<ApiPrincipal> NamedAsync(string presented, CancellationToken cancellationToken)
    {
        var resolution = namedKeys is null ? NamedKeyResolution.Unknown : await namedKeys.ResolveAsync(presented, cancellationToken);
        if (resolution.Principal is { } principal)
            return principal;

        throw new RpcException(new Status(StatusCode.PermissionDenied, resolution.Refusal ?? (namedKeys is null
            ? "The API key is not valid for this service, which accepts only the platform key (the AppHost's 'api-key' " +
              "parameter); named keys are for the Registry."
            : "The API key is not valid for this platform: use the AppHost's 'api-key' parameter value or a key from " +
              "'ifcb keys create'.")));
    }

    /// <summary>The least role the endpoint needs; null when it is open to anyone.</summary>
    private ApiRole? Needed(Endpoint? endpoint)
    {
        if (endpoint is null || endpoint.Metadata.GetMetadata<RequiresAdminAttribute>() is not null)
            return ApiRole.Admin;
        if (endpoint.Metadata.GetMetadata<RequiresApiKeyAttribute>() is not null)
            return ApiRole.Writer;
        if (endpoint.Metadata.GetMetadata<ReadOnlyRpcAttribute>() is not null)
            return readPolicy?.RequireKeyForReads == true ? ApiRole.Reader : null;
        // Orchestrators and load balancers probe grpc.health.v1.Health without credentials.
        return endpoint.Metadata.GetMetadata<GrpcMethodMetadata>()?.ServiceType is { } service
               && typeof(Grpc.Health.V1.Health.HealthBase).IsAssignableFrom(service)
            ? null
            : ApiRole.Admin;
    }

    private static string What(ApiRole needed) => needed switch
    {
        ApiRole.Reader => "needs a key of any role on this service (reads need a key: Ifcb:Registry:RequireKeyForReads)",
        ApiRole.Writer => "changes data",
        _ => "needs an admin key",
    };

    private static string Article(ApiRole role) => role == ApiRole.Admin ? "an" : "a";

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
    /// status the same way in every service) and the API-key check (see <see cref="ApiKeyInterceptor"/>).
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

    /// <summary>
    /// Makes the API-key check accept named keys (asked of <paramref name="resolver"/> on every call that needs a key) and,
    /// with <paramref name="requireKeyForReads"/>, demand a key of any role on [ReadOnlyRpc] methods too.
    /// </summary>
    public static IServiceCollection AddNamedApiKeys(this IServiceCollection services, Func<IServiceProvider, INamedKeyResolver> resolver,
        bool requireKeyForReads)
    {
        services.AddSingleton(resolver);
        return services.AddSingleton(new ApiKeyReadPolicy(requireKeyForReads));
    }
}
