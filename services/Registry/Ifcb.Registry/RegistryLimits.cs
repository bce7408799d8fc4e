namespace Ifcb.Registry;

/// <summary>The service's configurable limits and timeouts (section <c>Ifcb:Registry</c>; TimeSpans as <c>hh:mm:ss</c>).</summary>
/// <param name="MaxCheckpointBytes">Largest checkpoint accepted (<c>Ifcb:Registry:MaxCheckpointBytes</c>, default 2 GiB).</param>
/// <param name="UploadTimeout">
/// Longest one registration may take from allocating its version to a stored, checked checkpoint
/// (<c>Ifcb:Registry:UploadTimeout</c>, default 10 min); past it the version ends FAILED and the call DeadlineExceeded.
/// </param>
/// <param name="UploadIdleTimeout">
/// Longest wait for the client's next RegisterVersion message (<c>Ifcb:Registry:UploadIdleTimeout</c>, default 1 min), so a
/// stalled client is dropped long before the upload deadline.
/// </param>
/// <param name="PendingTimeout">
/// Age at which a PENDING version counts as abandoned by a registry that died mid-upload and expires to FAILED
/// (<c>Ifcb:Registry:PendingTimeout</c>, default 15 min; must exceed UploadTimeout).
/// </param>
/// <param name="PendingSweepInterval">
/// How often each replica sweeps for abandoned versions (<c>Ifcb:Registry:PendingSweepInterval</c>, default 5 min).
/// </param>
public sealed record RegistryLimits(
    long MaxCheckpointBytes, TimeSpan UploadTimeout, TimeSpan UploadIdleTimeout, TimeSpan PendingTimeout, TimeSpan PendingSweepInterval)
{
    public const string Section = "Ifcb:Registry";
    public const string MaxCheckpointBytesKey = Section + ":MaxCheckpointBytes";
    public const string UploadTimeoutKey = Section + ":UploadTimeout";
    public const string UploadIdleTimeoutKey = Section + ":UploadIdleTimeout";
    public const string PendingTimeoutKey = Section + ":PendingTimeout";
    public const string PendingSweepIntervalKey = Section + ":PendingSweepInterval";

    public const long DefaultMaxCheckpointBytes = 2L * 1024 * 1024 * 1024;
    public static readonly TimeSpan DefaultUploadTimeout = TimeSpan.FromMinutes(10);
    public static readonly TimeSpan DefaultUploadIdleTimeout = TimeSpan.FromMinutes(1);
    public static readonly TimeSpan DefaultPendingTimeout = TimeSpan.FromMinutes(15);
    public static readonly TimeSpan DefaultPendingSweepInterval = TimeSpan.FromMinutes(5);

    /// <exception cref="InvalidOperationException">
    /// A value is not positive, or the timeouts contradict each other; the message names the key.
    /// </exception>
    public static RegistryLimits From(IConfiguration configuration)
    {
        var max = configuration.GetValue(MaxCheckpointBytesKey, DefaultMaxCheckpointBytes);
        if (max <= 0)
            throw new InvalidOperationException(
                $"{MaxCheckpointBytesKey} is {max}; set a positive number of bytes (default {DefaultMaxCheckpointBytes}).");
        var limits = new RegistryLimits(max,
            Positive(configuration, UploadTimeoutKey, DefaultUploadTimeout),
            Positive(configuration, UploadIdleTimeoutKey, DefaultUploadIdleTimeout),
            Positive(configuration, PendingTimeoutKey, DefaultPendingTimeout),
            Positive(configuration, PendingSweepIntervalKey, DefaultPendingSweepInterval));
        if (limits.PendingTimeout <= limits.UploadTimeout)
            throw new InvalidOperationException($"{PendingTimeoutKey} ({limits.PendingTimeout}) must be longer than {UploadTimeoutKey} " +
                $"({limits.UploadTimeout}); otherwise a version could expire while its upload is still running.");
        if (limits.UploadIdleTimeout > limits.UploadTimeout)
            throw new InvalidOperationException(
                $"{UploadIdleTimeoutKey} ({limits.UploadIdleTimeout}) must not exceed {UploadTimeoutKey} ({limits.UploadTimeout}).");
        return limits;
    }

    private static TimeSpan Positive(IConfiguration configuration, string key, TimeSpan fallback)
    {
        var value = configuration.GetValue(key, fallback);
        return value > TimeSpan.Zero
            ? value
            : throw new InvalidOperationException($"{key} is {value}; set a positive duration as hh:mm:ss (default {fallback}).");
    }
}
