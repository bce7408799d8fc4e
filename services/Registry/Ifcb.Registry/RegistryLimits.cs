namespace Ifcb.Registry;

/// <summary>The service's configurable limits.</summary>
/// <param name="MaxCheckpointBytes">Largest checkpoint accepted (config <c>Ifcb:Registry:MaxCheckpointBytes</c>, default 2 GiB).</param>
public sealed record RegistryLimits(long MaxCheckpointBytes)
{
    public const string MaxCheckpointBytesKey = "Ifcb:Registry:MaxCheckpointBytes";
    public const long DefaultMaxCheckpointBytes = 2L * 1024 * 1024 * 1024;

    public static RegistryLimits From(IConfiguration configuration)
    {
        var max = configuration.GetValue(MaxCheckpointBytesKey, DefaultMaxCheckpointBytes);
        if (max <= 0)
            throw new InvalidOperationException($"{MaxCheckpointBytesKey} is {max}; set a positive number of bytes (default {DefaultMaxCheckpointBytes}).");
        return new RegistryLimits(max);
    }
}
