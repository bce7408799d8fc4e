using System.Globalization;

namespace Ifcb.Registry.Engine;

/// <summary>Time spans as people write them in messages ("15 minutes", "90 seconds"), in the largest whole unit.</summary>
internal static class Durations
{
    public static string Describe(TimeSpan span)
    {
        var (count, unit) = span switch
        {
            { Ticks: > 0 } when span.Ticks % TimeSpan.TicksPerHour == 0 => ((long)span.TotalHours, "hour"),
            { Ticks: > 0 } when span.Ticks % TimeSpan.TicksPerMinute == 0 => ((long)span.TotalMinutes, "minute"),
            _ when span.Ticks % TimeSpan.TicksPerSecond == 0 => ((long)span.TotalSeconds, "second"),
            _ => ((long)Math.Ceiling(span.TotalMilliseconds), "millisecond"),
        };
        return string.Create(CultureInfo.InvariantCulture, $"{count} {unit}{(count == 1 ? "" : "s")}");
    }
}
