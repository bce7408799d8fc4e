namespace Ifcb.Registry.Engine;

/// <summary>Limits and the retry schedule of <see cref="RegistryWebhooks"/>. The defaults suit production.</summary>
public sealed record WebhookOptions
{
    /// <summary>Most webhooks the registry keeps (registry-wide and per model together); more is ResourceExhausted.</summary>
    public int MaxWebhooks { get; init; } = 100;

    /// <summary>Longest one POST may take, connecting included; past it the attempt counts as failed.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Wait after the first failed attempt; it doubles after each further failure, up to <see cref="RetryMaxDelay"/>.</summary>
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest wait between two attempts.</summary>
    public TimeSpan RetryMaxDelay { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Attempts before a delivery is given up as FAILED (the first one included).</summary>
    public int MaxAttempts { get; init; } = 6;

    /// <summary>
    /// How often each replica looks for deliveries whose next attempt is due (retries, and attempts whose replica died
    /// mid-request). The first attempt does not wait for it.
    /// </summary>
    public TimeSpan SweepInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Delivery records untouched for this long are deleted by the sweep.</summary>
    public TimeSpan DeliveryRetention { get; init; } = TimeSpan.FromDays(7);

    /// <summary>
    /// How long an attempt holds its delivery: another replica takes the delivery over only after this, so a replica
    /// that died mid-request delays the attempt at most this long, and two replicas never send the same attempt.
    /// </summary>
    public TimeSpan AttemptLease => RequestTimeout + TimeSpan.FromSeconds(10);

    /// <summary>The wait after failed attempt number <paramref name="attempts"/> (1-based): base × 2^(n-1), at most the cap.</summary>
    public TimeSpan RetryDelay(int attempts)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(attempts, 1);
        var delay = RetryBaseDelay.Ticks * Math.Pow(2, Math.Min(attempts - 1, 30));
        return delay >= RetryMaxDelay.Ticks ? RetryMaxDelay : TimeSpan.FromTicks((long)delay);
    }

    /// <exception cref="ArgumentException">A value is not positive, or the base delay exceeds the cap.</exception>
    public WebhookOptions Validated()
    {
        if (MaxWebhooks < 1 || MaxAttempts < 1 || MaxAttempts > 100)
            throw new ArgumentException($"MaxWebhooks ({MaxWebhooks}) must be positive and MaxAttempts ({MaxAttempts}) 1..100.");
        foreach (var (name, value) in new[]
        {
            (nameof(RequestTimeout), RequestTimeout), (nameof(RetryBaseDelay), RetryBaseDelay), (nameof(RetryMaxDelay), RetryMaxDelay),
            (nameof(SweepInterval), SweepInterval), (nameof(DeliveryRetention), DeliveryRetention),
        })
        {
            if (value <= TimeSpan.Zero)
                throw new ArgumentException($"{name} is {value}; it must be positive.");
        }
        if (RetryBaseDelay > RetryMaxDelay)
            throw new ArgumentException($"RetryBaseDelay ({RetryBaseDelay}) must not exceed RetryMaxDelay ({RetryMaxDelay}).");
        return this;
    }
}
