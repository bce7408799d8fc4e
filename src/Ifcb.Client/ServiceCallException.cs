using Grpc.Core;

namespace Ifcb.Client;

/// <summary>
/// A call to a platform service failed; the message says in words which service, at which address, what went wrong
/// and, when the service seems to be down, what to check. It is still an <see cref="RpcException"/> with the original
/// status code, so code that handles status codes keeps working; <see cref="RpcException.Status"/>'s detail is the
/// same message.
/// </summary>
public sealed class ServiceCallException : RpcException
{
    public ServiceCallException(string service, string address, string method, int attempts, RpcException failure, string message)
        : base(new Status(failure?.StatusCode ?? StatusCode.Unknown, message, failure?.Status.DebugException),
            failure?.Trailers ?? [], message)
    {
        ArgumentNullException.ThrowIfNull(failure);
        Service = service;
        Address = address;
        Method = method;
        Attempts = attempts;
    }

    /// <summary>The service as a user knows it: Training, NormStats or Registry.</summary>
    public string Service { get; }

    public string Address { get; }

    /// <summary>The RPC, e.g. "Registry.SearchVersions".</summary>
    public string Method { get; }

    /// <summary>How many times the call was sent.</summary>
    public int Attempts { get; }
}
