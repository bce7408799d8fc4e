using System.Reflection;
using System.Runtime.InteropServices;
using Ifcb.Protos;

namespace Microsoft.Extensions.Hosting;

/// <summary>Who this process is: the service name, a per-process instance id, the platform version.</summary>
public sealed class ServiceIdentity(string service)
{
    public string Service { get; } = service;
    public string InstanceId { get; } = $"{service}-{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..6]}";
    public DateTimeOffset StartedAt { get; } = DateTimeOffset.UtcNow;

    public static string PlatformVersion { get; } =
        typeof(ServiceIdentity).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? "0.0.0";

    /// <summary>The GetInfo answer every service gives; <paramref name="details"/> adds service-specific facts.</summary>
    public ServiceInfo ToServiceInfo(IEnumerable<KeyValuePair<string, string>>? details = null)
    {
        var info = new ServiceInfo
        {
            Service = Service,
            Version = PlatformVersion,
            InstanceId = InstanceId,
            Machine = Environment.MachineName,
            Framework = RuntimeInformation.FrameworkDescription,
            ProcessorCount = Environment.ProcessorCount,
            StartedAt = StartedAt.ToString("O"),
        };
        if (details is not null)
            info.Details.Add(details.ToDictionary(d => d.Key, d => d.Value));
        return info;
    }
}
