using ScottPlot;

namespace Ifcb.Reports;

/// <summary>One class's concentration (cells/mL) at each of <see cref="ConcentrationPlot"/>'s times.</summary>
public sealed record ConcentrationSeries(string Label, IReadOnlyList<double> PerMilliliter);

/// <summary>
/// Concentrations over time of a run's top classes, one line per class against the bins' UTC timestamps: the quick look
/// an IFCB user takes after a RUN (the dashboard's time series, for one run). Empty input still renders, with a title
/// that says there was nothing to plot, so every run has the picture.
/// </summary>
public static class ConcentrationPlot
{
    public const int Width = 1000;
    public const int Height = 560;

    /// <param name="name">The picture's artifact name.</param>
    /// <param name="times">Bin timestamps (UTC), one per point; every series has one value per time.</param>
    /// <param name="series">The classes to draw, in legend order.</param>
    /// <exception cref="ArgumentException">A series' length differs from <paramref name="times"/>'s.</exception>
    public static Picture Render(string name, IReadOnlyList<DateTime> times, IReadOnlyList<ConcentrationSeries> series, string title)
    {
        ArgumentNullException.ThrowIfNull(times);
        ArgumentNullException.ThrowIfNull(series);
        if (series.FirstOrDefault(s => s.PerMilliliter.Count != times.Count) is { } wrong)
            throw new ArgumentException(
                $"Series {wrong.Label} has {wrong.PerMilliliter.Count} values for {times.Count} times.", nameof(series));
        var plot = TrainingPlots.NewPlot();
        var x = times.Select(t => t.ToOADate()).ToArray();
        foreach (var s in series)
        {
            var line = plot.Add.Scatter(x, s.PerMilliliter.ToArray());
            line.LegendText = s.Label;
            line.LineWidth = 2;
            line.MarkerSize = 6;
        }
        var empty = times.Count == 0 || series.Count == 0;
        if (empty)
        {
            // A date axis with no data would label an arbitrary span of 1899; no ticks says "nothing here" better.
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual();
            plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual();
            plot.Title($"{title}: no bin with ml_analyzed to plot");
        }
        else
        {
            var axis = plot.Axes.DateTimeTicksBottom();
            if (axis.TickGenerator is ScottPlot.TickGenerators.DateTimeAutomatic automatic)
                automatic.LabelFormatter = t => t.ToString("yyyy-MM-dd\nHH:mm", System.Globalization.CultureInfo.InvariantCulture);
            plot.Axes.AutoScale();
            // Concentrations are never negative; an axis from 0 keeps small ones from looking like large swings.
            plot.Axes.SetLimitsY(0, Math.Max(plot.Axes.GetLimits().Top, 1e-9));
            plot.Title($"{title}: top {series.Count} {(series.Count == 1 ? "class" : "classes")} by ROI count");
            plot.ShowLegend(Alignment.UpperRight);
        }
        plot.XLabel("bin time (UTC)");
        plot.YLabel("cells / mL");
        return TrainingPlots.Render(plot, name, Width, Height);
    }
}
