using SkiaSharp;

namespace Ifcb.Reports.Tests;

public class TrainingPlotsTests
{
    private static readonly EpochPoint[] Epochs =
        [.. Enumerable.Range(0, 12).Select(e => new EpochPoint(e, 3.0 / (e + 1), 2.0 / (e + 1) + (e > 6 ? 0.1 * (e - 6) : 0), 0.5 + e * 0.03, 0.55 + e * 0.03))];

    /// <summary>Decodes the PNG with SkiaSharp (not our code) and checks its size and that it is not blank.</summary>
    internal static void AssertRealPng(Picture picture)
    {
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], picture.Png.Take(4));
        using var bitmap = SKBitmap.Decode(picture.Png);
        Assert.NotNull(bitmap);
        Assert.Equal(picture.Width, bitmap.Width);
        Assert.Equal(picture.Height, bitmap.Height);
        var colours = new HashSet<SKColor>();
        for (var y = 0; y < bitmap.Height; y += 7)
            for (var x = 0; x < bitmap.Width; x += 7)
                colours.Add(bitmap.GetPixel(x, y));
        Assert.True(colours.Count > 10, $"{picture.Name} looks blank ({colours.Count} colours)");
        var output = Environment.GetEnvironmentVariable("IFCB_PLOTS_OUT");
        if (!string.IsNullOrEmpty(output))
            File.WriteAllBytes(Path.Combine(output, $"{picture.Width}x{picture.Height}-{picture.Name}"), picture.Png);
    }

    [Fact]
    public void Loss_and_f1_curves_render_at_the_expected_size()
    {
        var pictures = TrainingPlots.RenderAll(Epochs, bestEpoch: 6, confusion: null, ["a", "b"], "demo");
        Assert.Equal([TrainingPlots.LossCurves, TrainingPlots.F1Curves], pictures.Select(p => p.Name));
        Assert.All(pictures, p => Assert.Equal((900, 560), (p.Width, p.Height)));
        Assert.All(pictures, AssertRealPng);
    }

    [Fact]
    public void Confusion_matrix_for_two_classes_renders()
    {
        var picture = TrainingPlots.Confusion(new[,] { { 3, 0 }, { 1, 2 } }, ["Mesodinium_major", "Strombidium-like"], "sample");
        AssertRealPng(picture);
    }

    [Fact]
    public void Confusion_matrix_grows_to_keep_100_class_labels_readable()
    {
        const int n = 100;
        var random = new Random(3);
        var confusion = new int[n, n];
        for (var r = 0; r < n; r++)
            for (var i = 0; i < 50; i++)
                confusion[r, random.NextDouble() < 0.7 ? r : random.Next(n)]++;
        var classes = Enumerable.Range(0, n).Select(i => $"Class_{i:000}_Chaetoceros_like").ToArray();

        var picture = TrainingPlots.Confusion(confusion, classes, "100 classes");

        AssertRealPng(picture);
        Assert.True(picture.Width >= n * 16, "each class needs at least 16 px for its label");
    }
}
