namespace Ifcb.Reports.Tests;

public class ConcentrationPlotTests
{
    [Fact]
    public void Concentrations_over_time_render_at_the_expected_size()
    {
        var start = new DateTime(2013, 5, 26, 9, 52, 7, DateTimeKind.Utc);
        DateTime[] times = [.. Enumerable.Range(0, 24).Select(h => start.AddHours(h))];
        ConcentrationSeries[] series =
        [
            new("Mesodinium_major", [.. times.Select((_, i) => 10 + 5 * Math.Sin(i / 3.0))]),
            new("Strombidium-like", [.. times.Select((_, i) => 4.0 + i % 5)]),
        ];

        var picture = ConcentrationPlot.Render("run-summary.png", times, series, "run");

        Assert.Equal(("run-summary.png", ConcentrationPlot.Width, ConcentrationPlot.Height), (picture.Name, picture.Width, picture.Height));
        TrainingPlotsTests.AssertRealPng(picture);
    }

    [Fact]
    public void A_single_bin_and_no_bins_still_render()
    {
        var one = ConcentrationPlot.Render("one.png", [new DateTime(2012, 1, 28, 8, 15, 15, DateTimeKind.Utc)],
            [new ConcentrationSeries("a", [1.5])], "one bin");
        TrainingPlotsTests.AssertRealPng(one);
        var none = ConcentrationPlot.Render("none.png", [], [], "no bins");
        TrainingPlotsTests.AssertRealPng(none);
    }

    [Fact]
    public void A_series_of_the_wrong_length_is_refused()
    {
        Assert.Throws<ArgumentException>(() =>
            ConcentrationPlot.Render("x.png", [DateTime.UnixEpoch], [new ConcentrationSeries("a", [])], "x"));
    }
}
