using System.Reflection;
using Google.Protobuf.Reflection;
using Grpc.Core;

namespace Ifcb.Testing;

/// <summary>One RPC that a gRPC service class implements, and how it is classified for API keys.</summary>
public sealed record RpcImplementation(
    Type ServiceType, MethodInfo Method, MethodDescriptor Descriptor, bool RequiresApiKey, bool ReadOnly, bool RequiresAdmin)
{
    /// <summary>Marked as needing a key: a writer's ([RequiresApiKey]) or an admin's ([RequiresAdmin]).</summary>
    public bool NeedsKey => RequiresApiKey || RequiresAdmin;

    /// <summary>How many of [RequiresApiKey], [RequiresAdmin] and [ReadOnlyRpc] it carries (exactly one is right).</summary>
    public int Classifications => (RequiresApiKey ? 1 : 0) + (RequiresAdmin ? 1 : 0) + (ReadOnly ? 1 : 0);

    /// <summary>The gRPC path, e.g. /ifcb.v1.NormStats/Compute.</summary>
    public string Path => $"/{Descriptor.Service.FullName}/{Descriptor.Name}";

    public override string ToString() => $"{ServiceType.Name}.{Method.Name} ({Path})";
}

/// <summary>
/// Walks gRPC service implementations by reflection and calls any RPC knowing only its descriptor, so that tests about
/// every RPC cover new ones without being edited. Attributes are matched by name, so service types may come from an
/// assembly loaded in another load context (the end-to-end tests read the running services' own binaries).
/// </summary>
public static class GrpcRpcs
{
    public const string RequiresApiKeyAttribute = "Microsoft.Extensions.Hosting.RequiresApiKeyAttribute";
    public const string ReadOnlyRpcAttribute = "Microsoft.Extensions.Hosting.ReadOnlyRpcAttribute";
    public const string RequiresAdminAttribute = "Microsoft.Extensions.Hosting.RequiresAdminAttribute";

    private static readonly Marshaller<byte[]> RawBytes = Marshallers.Create(bytes => bytes, bytes => bytes);

    /// <summary>The concrete classes in <paramref name="assembly"/> that implement a generated gRPC service base.</summary>
    public static IEnumerable<Type> ServiceClasses(Assembly assembly) =>
        assembly.GetTypes().Where(t => t is { IsClass: true, IsAbstract: false } && GeneratedBase(t) is not null);

    /// <summary>
    /// Every RPC of <paramref name="serviceType"/>'s proto service that the class overrides (the others answer
    /// Unimplemented). Descriptors come from <paramref name="protos"/>, the generated code as the caller loaded it.
    /// </summary>
    public static IReadOnlyList<RpcImplementation> Implemented(Type serviceType, Assembly protos)
    {
        var generatedBase = GeneratedBase(serviceType)
                            ?? throw new ArgumentException($"{serviceType} does not derive from a generated gRPC service base.", nameof(serviceType));
        var container = generatedBase.DeclaringType?.FullName is { } name ? protos.GetType(name) : null;
        var descriptor = container?.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static)?.GetValue(null) as ServiceDescriptor
                         ?? throw new ArgumentException($"{protos.GetName().Name} has no service descriptor for {generatedBase}.", nameof(protos));

        var found = new List<RpcImplementation>();
        foreach (var method in descriptor.Methods)
        {
            var implementation = serviceType.GetMethods(BindingFlags.Public | BindingFlags.Instance)
                .Single(m => m.Name == method.Name && m.GetBaseDefinition().DeclaringType == generatedBase);
            if (implementation.DeclaringType == generatedBase)
                continue;
            found.Add(new RpcImplementation(serviceType, implementation, method,
                HasAttribute(implementation, RequiresApiKeyAttribute), HasAttribute(implementation, ReadOnlyRpcAttribute),
                HasAttribute(implementation, RequiresAdminAttribute)));
        }
        return found;
    }

    /// <summary>
    /// Calls <paramref name="method"/> with an empty request (zero bytes: every field at its default); a client stream is
    /// opened and closed at once, a server stream read to its end. Returns the status the call ended with.
    /// </summary>
    public static async Task<Status> CallWithEmptyRequestAsync(CallInvoker invoker, MethodDescriptor method, Metadata? headers, TimeSpan timeout)
    {
        var type = (method.IsClientStreaming, method.IsServerStreaming) switch
        {
            (false, false) => MethodType.Unary,
            (true, false) => MethodType.ClientStreaming,
            (false, true) => MethodType.ServerStreaming,
            (true, true) => MethodType.DuplexStreaming,
        };
        var raw = new Method<byte[], byte[]>(type, method.Service.FullName, method.Name, RawBytes, RawBytes);
        var options = new CallOptions(headers, DateTime.UtcNow + timeout);
        try
        {
            switch (type)
            {
                case MethodType.Unary:
                    await invoker.AsyncUnaryCall(raw, null, options, []);
                    break;
                case MethodType.ClientStreaming:
                {
                    using var call = invoker.AsyncClientStreamingCall(raw, null, options);
                    await CompleteRequestsAsync(call.RequestStream);
                    await call.ResponseAsync;
                    break;
                }
                case MethodType.ServerStreaming:
                {
                    using var call = invoker.AsyncServerStreamingCall(raw, null, options, []);
                    while (await call.ResponseStream.MoveNext(CancellationToken.None))
                    {
                    }
                    break;
                }
                default:
                {
                    using var call = invoker.AsyncDuplexStreamingCall(raw, null, options);
                    await CompleteRequestsAsync(call.RequestStream);
                    while (await call.ResponseStream.MoveNext(CancellationToken.None))
                    {
                    }
                    break;
                }
            }
            return Status.DefaultSuccess;
        }
        catch (RpcException e)
        {
            return e.Status;
        }
    }

    private static async Task CompleteRequestsAsync(IClientStreamWriter<byte[]> requests)
    {
        try
        {
            await requests.CompleteAsync();
        }
        catch (Exception e) when (e is RpcException or InvalidOperationException)
        {
            // The server may already have answered (a refused call ends before it reads anything); the status tells.
        }
    }

    private static Type? GeneratedBase(Type type)
    {
        for (var t = type.BaseType; t is not null; t = t.BaseType)
            if (t.IsAbstract && HasAttribute(t, "Grpc.Core.BindServiceMethodAttribute"))
                return t;
        return null;
    }

    private static bool HasAttribute(MemberInfo member, string fullName) =>
        member.CustomAttributes.Any(a => a.AttributeType.FullName == fullName);
}
