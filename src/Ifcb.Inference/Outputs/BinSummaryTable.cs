using System.Globalization;
using System.Text;
using Ifcb.Data.Bins;
using Ifcb.Reports;

namespace Ifcb.Inference.Outputs;

/// <summary>
/// One bin of a run: its id and UTC timestamp (from the bin id), ROIs classified (after v1 stitching), ml_analyzed and,
/// per class in the model's order, the ROIs whose winning class it is.
/// </summary>
public sealed record BinSummaryRow(string BinId, DateTime Timestamp, int RoiCount, MlAnalyzed MlAnalyzed, IReadOnlyList<int> ClassCounts)
{
    /// <summary>Per class, the ROIs whose thresholded class it is (see <see cref="ClassThresholds"/>); without thresholds,
    /// <see cref="ClassCounts"/>.</summary>
    public IReadOnlyList<int> ThresholdedCounts { get; init; } = ClassCounts;

    /// <summary>ROIs whose winning score is below their class's threshold.</summary>
    public int UnclassifiedCount { get; init; }

    /// <summary>Cells/mL of class <paramref name="classIndex"/>; null when ml_analyzed is unknown or not positive.</summary>
    public double? Concentration(int classIndex) => MlAnalyzed.IsUsable ? ClassCounts[classIndex] / MlAnalyzed.Milliliters : null;

    /// <summary>Thresholded cells/mL of class <paramref name="classIndex"/>; null when ml_analyzed is unknown or not positive.</summary>
    public double? ThresholdedConcentration(int classIndex) =>
        MlAnalyzed.IsUsable ? ThresholdedCounts[classIndex] / MlAnalyzed.Milliliters : null;
}

/// <summary>A bin of the run that the summary could not include, and why.</summary>
public sealed record BinLeftOut(string BinId, string Reason);

/// <summary>A class's total over a run: ROIs it won, and cells/mL over the bins whose ml_analyzed is usable.</summary>
/// <param name="MeanConcentration">Σ count ÷ Σ ml_analyzed over bins with a usable ml_analyzed (the volume-weighted mean,
/// which equals pooling those bins into one sample); null when no bin has one.</param>
public sealed record ClassTotal(string Class, long Count, double? MeanConcentration);

/// <summary>A run's totals, as <c>ifcb run</c> prints them.</summary>
/// <param name="BinsWithoutMl">Bins whose ml_analyzed is unknown or not positive (left out of mL and concentrations).</param>
public sealed record BinSummaryTotals(
    int Bins, long Rois, double TotalMilliliters, int BinsWithoutMl, IReadOnlyList<ClassTotal> TopClasses);

/// <summary>
/// The run summary every bin RUN writes beside its result files: <see cref="CsvFileName"/>, one row per bin, and
/// <see cref="PngFileName"/>, the top classes' concentrations over time. CSV columns (invariant culture, RFC 4180
/// quoting, rows by timestamp then bin id): <c>bin_id</c>, <c>timestamp</c> (ISO 8601 UTC), <c>roi_count</c>,
/// <c>ml_analyzed</c> (mL, see <see cref="MlAnalyzed"/>; empty when unknown), then <c>{class}_count</c> for every class
/// and <c>{class}_per_ml</c> (count ÷ ml_analyzed; empty when ml_analyzed is unknown or ≤ 0), both in the model's class
/// order, of the raw winning class; then <c>unclassified_count</c> (ROIs whose winning score is below their class's
/// threshold, see <see cref="ClassThresholds"/>), <c>{class}_count_thresholded</c> and <c>{class}_per_ml_thresholded</c>,
/// the same of the thresholded class (equal to the raw ones for a model without thresholds). Totals and the PNG use the
/// raw counts.
/// </summary>
public sealed class BinSummaryTable
{
    public const string CsvFileName = "run-summary.csv";
    public const string PngFileName = "run-summary.png";

    /// <summary>Classes drawn in the PNG and listed in the totals.</summary>
    public const int TopClassCount = 6;

    private readonly List<BinSummaryRow> _rows = [];
    private readonly List<BinLeftOut> _leftOut = [];

    public BinSummaryTable(IReadOnlyList<string> classes)
    {
        ArgumentNullException.ThrowIfNull(classes);
        Classes = classes;
    }

    public IReadOnlyList<string> Classes { get; }

    /// <summary>Rows by timestamp, then bin id.</summary>
    public IReadOnlyList<BinSummaryRow> Rows =>
        [.. _rows.OrderBy(r => r.Timestamp).ThenBy(r => r.BinId, StringComparer.Ordinal)];

    /// <summary>
    /// Adds a classified bin: counts <paramref name="winners"/> (0-based class per ROI) and computes ml_analyzed from the
    /// bin's files. An ADC whose time columns are unreadable gives an unknown ml_analyzed with the reason, not a failed bin:
    /// its classification stands.
    /// </summary>
    /// <param name="thresholded">The thresholded class per ROI (<see cref="ClassThresholds.UnclassifiedIndex"/> =
    /// unclassified); null = the winners.</param>
    public BinSummaryRow Add(BinId id, string binPath, IReadOnlyList<int> winners, IReadOnlyList<int>? thresholded = null)
    {
        ArgumentNullException.ThrowIfNull(id);
        ArgumentNullException.ThrowIfNull(winners);
        MlAnalyzed ml;
        try
        {
            ml = MlAnalyzed.Compute(binPath);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            ml = MlAnalyzed.Unknown(e.Message);
        }
        return Add(id, ml, winners, thresholded);
    }

    /// <summary>
    /// Adds a bin that this run skipped because its outputs exist (no clobber), with the winners read back from the first
    /// output that is readable and has this model's classes; when none is, the bin goes to <see cref="LeftOut"/> instead.
    /// </summary>
    public BinSummaryRow? AddFromOutputs(BinId id, string binPath, IReadOnlyList<string> outputs)
    {
        ArgumentNullException.ThrowIfNull(id);
        ArgumentNullException.ThrowIfNull(outputs);
        var reasons = new List<string>();
        foreach (var output in outputs)
        {
            try
            {
                var labels = ResultWinners.ReadLabels(output, Classes);
                return Add(id, binPath, labels.Winners, labels.Thresholded);
            }
            catch (InvalidDataException e)
            {
                reasons.Add(e.Message);
            }
        }
        _leftOut.Add(new BinLeftOut(id.Lid, string.Join(" ", reasons)));
        return null;
    }

    /// <summary>Bins of the run that have no row, and why (their existing outputs could not be read back).</summary>
    public IReadOnlyList<BinLeftOut> LeftOut => _leftOut;

    /// <param name="thresholded">The thresholded class per ROI (<see cref="ClassThresholds.UnclassifiedIndex"/> =
    /// unclassified); null = the winners.</param>
    public BinSummaryRow Add(BinId id, MlAnalyzed ml, IReadOnlyList<int> winners, IReadOnlyList<int>? thresholded = null)
    {
        ArgumentNullException.ThrowIfNull(id);
        ArgumentNullException.ThrowIfNull(ml);
        ArgumentNullException.ThrowIfNull(winners);
        var counts = Count(id, winners, nameof(winners));
        var kept = thresholded ?? winners;
        if (kept.Count != winners.Count)
            throw new ArgumentException($"Bin {id.Lid}: {kept.Count} thresholded classes for {winners.Count} ROIs.", nameof(thresholded));
        var row = new BinSummaryRow(id.Lid, id.Timestamp, winners.Count, ml, counts)
        {
            ThresholdedCounts = Count(id, kept.Where(k => k != ClassThresholds.UnclassifiedIndex), nameof(thresholded)),
            UnclassifiedCount = kept.Count(k => k == ClassThresholds.UnclassifiedIndex),
        };
        _rows.Add(row);
        return row;
    }

    private int[] Count(BinId id, IEnumerable<int> classes, string parameter)
    {
        var counts = new int[Classes.Count];
        foreach (var c in classes)
        {
            if ((uint)c >= (uint)counts.Length)
                throw new ArgumentException($"Bin {id.Lid}: class index {c} is not one of the model's {counts.Length} classes.",
                    parameter);
            counts[c]++;
        }
        return counts;
    }

    public BinSummaryTotals Totals(int top = TopClassCount)
    {
        var usable = _rows.Where(r => r.MlAnalyzed.IsUsable).ToList();
        var milliliters = usable.Sum(r => r.MlAnalyzed.Milliliters);
        var classes = TopClasses(top)
            .Select(c => new ClassTotal(Classes[c], _rows.Sum(r => (long)r.ClassCounts[c]),
                usable.Count == 0 ? null : usable.Sum(r => (long)r.ClassCounts[c]) / milliliters))
            .ToList();
        return new BinSummaryTotals(_rows.Count, _rows.Sum(r => (long)r.RoiCount), milliliters, _rows.Count - usable.Count, classes);
    }

    /// <summary>Indices of the classes with the most ROIs over the run (ties: model order); classes with none are left out.</summary>
    private List<int> TopClasses(int top) =>
        [.. Enumerable.Range(0, Classes.Count)
            .Select(c => (Index: c, Count: _rows.Sum(r => (long)r.ClassCounts[c])))
            .Where(t => t.Count > 0)
            .OrderByDescending(t => t.Count)
            .ThenBy(t => t.Index)
            .Take(top)
            .Select(t => t.Index)];

    public void WriteCsv(Stream destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        using var writer = new StreamWriter(destination, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), leaveOpen: true)
        {
            NewLine = "\n",
        };
        var header = new List<string> { "bin_id", "timestamp", "roi_count", "ml_analyzed" };
        header.AddRange(Classes.Select(c => c + "_count"));
        header.AddRange(Classes.Select(c => c + "_per_ml"));
        header.Add("unclassified_count");
        header.AddRange(Classes.Select(c => c + "_count_thresholded"));
        header.AddRange(Classes.Select(c => c + "_per_ml_thresholded"));
        writer.WriteLine(string.Join(',', header.Select(Quote)));
        var line = new StringBuilder();
        foreach (var row in Rows)
        {
            line.Clear()
                .Append(Quote(row.BinId)).Append(',')
                .Append(RunEngine.FormatTimestamp(new DateTimeOffset(row.Timestamp, TimeSpan.Zero))).Append(',')
                .Append(row.RoiCount.ToString(CultureInfo.InvariantCulture)).Append(',')
                .Append(row.MlAnalyzed.Source == MlAnalyzedSource.None ? "" : Number(row.MlAnalyzed.Milliliters));
            foreach (var count in row.ClassCounts)
                line.Append(',').Append(count.ToString(CultureInfo.InvariantCulture));
            for (var c = 0; c < Classes.Count; c++)
                line.Append(',').Append(row.Concentration(c) is { } perMl ? Number(perMl) : "");
            line.Append(',').Append(row.UnclassifiedCount.ToString(CultureInfo.InvariantCulture));
            foreach (var count in row.ThresholdedCounts)
                line.Append(',').Append(count.ToString(CultureInfo.InvariantCulture));
            for (var c = 0; c < Classes.Count; c++)
                line.Append(',').Append(row.ThresholdedConcentration(c) is { } perMl ? Number(perMl) : "");
            writer.WriteLine(line);
        }
    }

    /// <summary>The top classes' concentrations over time; bins without a usable ml_analyzed are left out.</summary>
    public Picture RenderPlot(string title, int top = TopClassCount)
    {
        var plotted = Rows.Where(r => r.MlAnalyzed.IsUsable).ToList();
        var series = TopClasses(top)
            .Select(c => new ConcentrationSeries(Classes[c], [.. plotted.Select(r => r.Concentration(c)!.Value)]))
            .ToList();
        return ConcentrationPlot.Render(PngFileName, [.. plotted.Select(r => r.Timestamp)], series, title);
    }

    /// <summary>
    /// Writes <see cref="CsvFileName"/> and <see cref="PngFileName"/> into <paramref name="directory"/> (created) and
    /// returns their paths. Each is written under a temporary name and renamed, as result files are.
    /// </summary>
    public IReadOnlyList<string> WriteFiles(string directory, string title)
    {
        Directory.CreateDirectory(directory);
        var csv = Path.Combine(directory, CsvFileName);
        WriteAtomically(csv, path =>
        {
            using var stream = File.Create(path);
            WriteCsv(stream);
        });
        var png = Path.Combine(directory, PngFileName);
        var picture = RenderPlot(title);
        WriteAtomically(png, path => File.WriteAllBytes(path, picture.Png));
        return [csv, png];
    }

    private static void WriteAtomically(string path, Action<string> write)
    {
        var temporary = path + ".partial";
        try
        {
            write(temporary);
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
                File.Delete(temporary);
        }
    }

    private static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static string Quote(string field) => CsvResultWriter.Quote(field);
}
