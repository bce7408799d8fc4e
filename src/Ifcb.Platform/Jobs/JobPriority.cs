namespace Ifcb.Platform.Jobs;

/// <summary>
/// How urgently a queued job should start. Workers take the highest priority first; within one priority, jobs start
/// roughly in the order they were queued. The value is the message priority on the broker's job queue.
/// </summary>
public enum JobPriority
{
    /// <summary>Background work (a sweep's trials by default): starts only when nothing more urgent waits.</summary>
    Low = 0,

    /// <summary>The default.</summary>
    Normal = 1,

    /// <summary>Starts before every queued normal and low job (it does not stop a job that is already running).</summary>
    High = 2,
}

/// <summary>The names clients use for <see cref="JobPriority"/>: "low", "normal", "high".</summary>
public static class JobPriorities
{
    /// <summary>The highest value, which the broker's priority queue is declared with.</summary>
    public const byte MaxBrokerPriority = (byte)JobPriority.High;

    /// <summary>Parses a client's priority; empty means <see cref="JobPriority.Normal"/>.</summary>
    /// <exception cref="IfcbException">InvalidArgument naming the field and the accepted values.</exception>
    public static JobPriority Parse(string? text, string field = "priority") => text?.Trim().ToLowerInvariant() switch
    {
        null or "" or "normal" => JobPriority.Normal,
        "low" => JobPriority.Low,
        "high" => JobPriority.High,
        _ => throw IfcbException.InvalidArgument($"{field}: '{text}' is not a priority; use low, normal (default) or high."),
    };

    public static string Name(this JobPriority priority) => priority switch
    {
        JobPriority.Low => "low",
        JobPriority.High => "high",
        _ => "normal",
    };

    /// <summary>The message priority on the job queue (0..<see cref="MaxBrokerPriority"/>).</summary>
    public static byte BrokerPriority(this JobPriority priority) =>
        (byte)Math.Clamp((int)priority, (int)JobPriority.Low, (int)JobPriority.High);
}
