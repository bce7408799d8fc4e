namespace Ifcb.Platform.Jobs;

/// <summary>
/// The job kernel's timings and limits (configuration section <c>Ifcb:Jobs</c>). The defaults notice a dead worker
/// within about a minute (lease 30 s + one reconciler sweep of 10 s + skew) and ride out storage or broker outages of up
/// to 15 minutes without failing a job.
/// </summary>
public sealed record JobKernelOptions
{
    public const string SectionName = "Ifcb:Jobs";

    /// <summary>How long a worker's claim on a RUNNING job lasts without renewal.</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How often a worker renews its lease (and notices a cancel request or a passed deadline).</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Attempts that may end with a lost worker before the job is failed instead of retried.</summary>
    public int MaxAttempts { get; init; } = 3;

    /// <summary>How often each service's reconciler sweeps its active jobs.</summary>
    public TimeSpan ReconcileInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>A job saved but not marked as sent this long after it was saved is sent by the reconciler.</summary>
    public TimeSpan DispatchGrace { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>A QUEUED job sent this long ago and still not started is sent again (a duplicate is harmless).</summary>
    public TimeSpan RedispatchAfter { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>A final job that still needs follow-up (e.g. registration) is followed up again after this long.</summary>
    public TimeSpan FollowUpAfter { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>How long a delivered job waits for a free worker slot before it is handed back to the queue.</summary>
    public TimeSpan SlotWait { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a job keeps retrying through transient faults (storage, broker, peer outages) before it fails.</summary>
    public TimeSpan TransientRetryBudget { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>Longest pause between two retries after a transient fault.</summary>
    public TimeSpan TransientMaxBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a job's command may wait for the broker's confirmation when it is first sent (the reconciler sends it
    /// later otherwise).
    /// </summary>
    public TimeSpan DispatchTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Checks that the timings make sense together.</summary>
    /// <exception cref="InvalidOperationException">Names the setting to fix.</exception>
    public JobKernelOptions Validate()
    {
        if (LeaseDuration <= TimeSpan.Zero || HeartbeatInterval <= TimeSpan.Zero || HeartbeatInterval * 2 > LeaseDuration)
            throw new InvalidOperationException(
                $"{SectionName}: HeartbeatInterval ({HeartbeatInterval}) must be positive " +
                $"and at most half of LeaseDuration ({LeaseDuration}).");
        if (MaxAttempts is < 1 or > 100)
            throw new InvalidOperationException($"{SectionName}:MaxAttempts is {MaxAttempts}; use 1-100.");
        if (ReconcileInterval <= TimeSpan.Zero || SlotWait < TimeSpan.Zero || TransientRetryBudget < TimeSpan.Zero
            || TransientMaxBackoff <= TimeSpan.Zero || DispatchTimeout <= TimeSpan.Zero)
            throw new InvalidOperationException($"{SectionName}: intervals, waits and budgets must be positive.");
        return this;
    }

    /// <summary>Exponential backoff with full jitter for the <paramref name="retry"/>-th retry after a transient fault.</summary>
    public TimeSpan TransientBackoff(int retry)
    {
        var ceiling = Math.Min(TransientMaxBackoff.TotalMilliseconds, 500 * Math.Pow(2, Math.Min(retry, 16)));
        return TimeSpan.FromMilliseconds(ceiling / 2 + Random.Shared.NextDouble() * ceiling / 2);
    }
}
