using Ifcb.Platform;

namespace Ifcb.Training.Engine.Sweeps;

/// <summary>
/// What ranks a sweep's trials: one validation metric of a trial's best epoch (the checkpoint that would be
/// registered), and whether more is better.
/// </summary>
public sealed record SweepMetric(string Name, bool HigherIsBetter)
{
    public const string DefaultName = "f1_weighted";

    private static readonly Dictionary<string, (Func<EpochRecord, double> Read, bool HigherIsBetter)> Metrics =
        new(StringComparer.Ordinal)
        {
            ["f1_weighted"] = (e => e.F1Weighted, true),
            ["f1_macro"] = (e => e.F1Macro, true),
            ["accuracy"] = (e => e.Accuracy, true),
            ["val_loss"] = (e => e.ValLoss, false),
            ["val_loss_mean"] = (e => e.ValLossMean, false),
        };

    public static IReadOnlyCollection<string> Names => Metrics.Keys;

    public string Direction => HigherIsBetter ? "max" : "min";

    /// <summary>
    /// The metric <paramref name="name"/> (empty = f1_weighted) ranked <paramref name="direction"/> (empty = its natural one).
    /// </summary>
    /// <exception cref="IfcbException">InvalidArgument: an unknown metric or direction.</exception>
    public static SweepMetric Parse(string? name, string? direction)
    {
        name = string.IsNullOrWhiteSpace(name) ? DefaultName : name.Trim().ToLowerInvariant();
        if (!Metrics.TryGetValue(name, out var metric))
            throw IfcbException.InvalidArgument($"metric '{name}' is not one of {string.Join(", ", Metrics.Keys)}.");
        var higher = direction?.Trim().ToLowerInvariant() switch
        {
            null or "" => metric.HigherIsBetter,
            "max" => true,
            "min" => false,
            _ => throw IfcbException.InvalidArgument($"direction '{direction}' is neither max nor min."),
        };
        return new SweepMetric(name, higher);
    }

    /// <summary>The metric of the epoch, or null when the epoch has none that can be ranked (NaN after a divergence).</summary>
    public double? Read(EpochRecord epoch)
    {
        ArgumentNullException.ThrowIfNull(epoch);
        var value = Metrics[Name].Read(epoch);
        return double.IsFinite(value) ? value : null;
    }

    /// <summary>Negative when <paramref name="a"/> is better than <paramref name="b"/>.</summary>
    public int Compare(double a, double b) => HigherIsBetter ? b.CompareTo(a) : a.CompareTo(b);
}
