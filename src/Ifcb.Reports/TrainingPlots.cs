using ScottPlot;

namespace Ifcb.Reports;

/// <summary>One row of a run's per-epoch history, as the plots need it.</summary>
public sealed record EpochPoint(int Epoch, double TrainLoss, double ValLoss, double F1Macro, double F1Weighted);

/// <summary>A rendered picture: its artifact name and PNG bytes.</summary>
public sealed record Picture(string Name, byte[] Png, int Width, int Height);

/// <summary>
/// The pictures written next to every finished training job's artifacts: loss curves (train and validation, best epoch
/// marked), F1 curves, and the row-normalised confusion matrix with readable class labels for up to ~100 classes.
/// </summary>
public static class TrainingPlots
{
    public const string LossCurves = "loss_curves.png";
    public const string F1Curves = "f1_curves.png";
    public const string ConfusionMatrix = "confusion_matrix.png";

    public static IReadOnlyList<Picture> RenderAll(IReadOnlyList<EpochPoint> epochs, int bestEpoch, int[,]? confusion,
        IReadOnlyList<string> classes, string title)
    {
        var pictures = new List<Picture> { Loss(epochs, bestEpoch, title), F1(epochs, bestEpoch, title) };
        if (confusion is not null)
            pictures.Add(Confusion(confusion, classes, $"{title} — best epoch {bestEpoch}"));
        return pictures;
    }

    public static Picture Loss(IReadOnlyList<EpochPoint> epochs, int bestEpoch, string title)
    {
        var plot = NewPlot();
        var x = epochs.Select(e => (double)e.Epoch).ToArray();
        AddSeries(plot, x, epochs.Select(e => e.TrainLoss).ToArray(), "train_loss", Colors.Blue);
        AddSeries(plot, x, epochs.Select(e => e.ValLoss).ToArray(), "val_loss", Colors.OrangeRed);
        MarkBest(plot, bestEpoch);
        plot.Title($"{title}: loss (sum over batches, as neuston)");
        plot.XLabel("epoch (0-based)");
        plot.YLabel("loss");
        plot.ShowLegend(Alignment.UpperRight);
        return Render(plot, LossCurves, 900, 560);
    }

    public static Picture F1(IReadOnlyList<EpochPoint> epochs, int bestEpoch, string title)
    {
        var plot = NewPlot();
        var x = epochs.Select(e => (double)e.Epoch).ToArray();
        AddSeries(plot, x, epochs.Select(e => e.F1Weighted).ToArray(), "f1_weighted", Colors.Green);
        AddSeries(plot, x, epochs.Select(e => e.F1Macro).ToArray(), "f1_macro", Colors.Purple);
        MarkBest(plot, bestEpoch);
        plot.Axes.SetLimitsY(0, 1.05);
        plot.Title($"{title}: validation F1");
        plot.XLabel("epoch (0-based)");
        plot.YLabel("F1");
        plot.ShowLegend(Alignment.LowerRight);
        return Render(plot, F1Curves, 900, 560);
    }

    /// <summary>Rows = true class, columns = predicted; each row divided by its support (rows with no images stay 0).</summary>
    public static Picture Confusion(int[,] confusion, IReadOnlyList<string> classes, string title)
    {
        var n = confusion.GetLength(0);
        var normalised = new double[n, n];
        for (var r = 0; r < n; r++)
        {
            double support = 0;
            for (var c = 0; c < n; c++)
                support += confusion[r, c];
            for (var c = 0; c < n; c++)
                normalised[r, c] = support == 0 ? 0 : confusion[r, c] / support;
        }

        var plot = NewPlot();
        var heatmap = plot.Add.Heatmap(normalised);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        // The heatmap draws row 0 at the top: true class r sits at y = n-1-r, predicted class c at x = c.
        heatmap.Extent = new CoordinateRect(-0.5, n - 0.5, -0.5, n - 0.5);
        plot.Add.ColorBar(heatmap);

        var fontSize = n <= 20 ? 12f : n <= 50 ? 10f : 8f;
        var positions = Enumerable.Range(0, n).Select(i => (double)i).ToArray();
        var labels = classes.Take(n).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(positions, labels);
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            [.. positions.Select(p => n - 1 - p)], labels);
        plot.Axes.Bottom.TickLabelStyle.Rotation = 90;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        plot.Axes.Bottom.TickLabelStyle.FontSize = fontSize;
        plot.Axes.Left.TickLabelStyle.FontSize = fontSize;
        plot.Axes.SetLimits(-0.5, n - 0.5, -0.5, n - 0.5);
        if (n <= 30)
        {
            for (var r = 0; r < n; r++)
                for (var c = 0; c < n; c++)
                {
                    var text = plot.Add.Text(confusion[r, c].ToString(System.Globalization.CultureInfo.InvariantCulture), c, n - 1 - r);
                    text.LabelAlignment = Alignment.MiddleCenter;
                    text.LabelFontColor = normalised[r, c] > 0.5 ? Colors.Black : Colors.White;
                    text.LabelFontSize = fontSize;
                }
        }
        plot.Title($"{title} (row-normalised; numbers are image counts)");
        plot.XLabel("predicted class");
        plot.YLabel("true class");

        var longest = labels.Length == 0 ? 0 : labels.Max(l => l.Length);
        var labelSpace = (int)(longest * fontSize * 0.62) + 80;
        var cell = n <= 20 ? 40 : n <= 50 ? 22 : 16;
        var side = Math.Max(480, n * cell) + labelSpace;
        plot.Layout.Fixed(new PixelPadding(labelSpace, 120, labelSpace, 50));
        return Render(plot, ConfusionMatrix, side + 120, side + 50);
    }

    /// <summary>
    /// A plot whose text uses a font file we located ourselves: SkiaSharp's dependency-free native build cannot ask
    /// fontconfig for system fonts, so without this every label would render empty.
    /// </summary>
    internal static Plot NewPlot()
    {
        var plot = new Plot();
        plot.Font.Set(PlotFont.Value);
        return plot;
    }

    private static readonly Lazy<string> PlotFont = new(() =>
    {
        const string family = "DejaVu Sans";
        string[] candidates =
        [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
        ];
        var file = candidates.FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException("No DejaVu Sans font for plot labels; install Debian's fonts-dejavu-core.");
        Fonts.AddFontFile(family, file);
        return family;
    });

    private static void AddSeries(Plot plot, double[] x, double[] y, string label, Color color)
    {
        var line = plot.Add.Scatter(x, y);
        line.LegendText = label;
        line.Color = color;
        line.LineWidth = 2;
        line.MarkerSize = 6;
    }

    private static void MarkBest(Plot plot, int bestEpoch)
    {
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        if (bestEpoch < 0)
            return;
        var best = plot.Add.VerticalLine(bestEpoch);
        best.LineStyle.Pattern = LinePattern.Dashed;
        best.Color = Colors.Gray;
        best.LegendText = $"best epoch {bestEpoch}";
    }

    internal static Picture Render(Plot plot, string name, int width, int height) =>
        new(name, plot.GetImageBytes(width, height, ImageFormat.Png), width, height);
}
