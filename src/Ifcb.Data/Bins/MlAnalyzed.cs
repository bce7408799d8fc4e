using System.Globalization;

namespace Ifcb.Data.Bins;

/// <summary>Where a bin's ml_analyzed came from.</summary>
public enum MlAnalyzedSource
{
    /// <summary>Not computable (empty ADC, no inhibit times, no header times); <see cref="MlAnalyzed.Reason"/> says why.</summary>
    None = 0,

    /// <summary>The ADC's time columns.</summary>
    Adc,

    /// <summary>The <c>.hdr</c>'s <c>runTime</c>/<c>inhibitTime</c> (v2 ADCs without inhibit times, or with one row).</summary>
    Header,
}

/// <summary>
/// The volume of sample a bin imaged (mL), the time the instrument could trigger (look time, s) and the run time (s):
/// the denominator of every concentration (cells/mL). Ported from pyifcb 1.3.1's <c>ifcb/metrics/ml_analyzed.py</c>
/// (itself a port of hsosik/ifcb-analysis <c>IFCB_volume_analyzed_fromADC.m</c>), which all pyifcb releases and the
/// IFCB dashboard use; pyifcb before 2023 read v2 bins' header first, which for testdata's v2 bin gives 5.0808 mL
/// instead of 4.8851 mL (its header runTime includes the time after the last trigger).
/// <para>
/// v1 (<c>IFCBn_YYYY_DDD_HHMMSS</c>), from ADC columns <c>triggerOpenTime</c> <i>o</i> and <c>frameGrabTime</c>
/// <i>g</i>: keep the first row of each trigger number; add 86400 s to negative times (a bin that spans midnight);
/// run = <i>g</i><sub>last</sub>; each processing gap <i>p</i><sub>i</sub> = <i>o</i><sub>i</sub> − <i>g</i><sub>i−1</sub>
/// counts at least MIN_PROC = 0.073 s (0.050 s for IFCB5 from 2015-06-01, pyifcb #67);
/// look = run − Σ<i>p</i><sub>i</sub> − MIN_PROC (the last term matches the MATLAB original);
/// mL = look × 5/48000 mL per syringe step × 40 steps/s.
/// </para>
/// <para>
/// v2 (<c>DYYYYMMDDTHHMMSS_IFCBnnn</c>), at 0.25 mL/min: mL = 0.25 × look / 60, look = run − inhibit, from ADC columns
/// <c>ADC_time</c> <i>a</i>, <c>runTime</c> <i>r</i>, <c>inhibitTime</c> <i>h</i>. A row is good when <i>h</i> &gt; 0
/// and −0.1 &lt; <i>h</i><sub>i</sub> − <i>h</i><sub>i−1</sub> &lt; 5 (row 0 always is); <i>m</i> = the most frequent
/// step between consecutive good rows' <i>h</i>, rounded to 4 decimals (the smallest on ties). When <i>r</i>₁ − <i>a</i>₁
/// &gt; 10 s the file carries offsets: R = <i>r</i>₁ − <i>a</i>₁ and H = <i>h</i>₁ + 2<i>m</i>, else both 0.
/// inhibit = <i>h</i><sub>last</sub> − H if every row is good, else <i>h</i><sub>last good</sub> + (bad rows) × <i>m</i> − H.
/// run = <i>r</i><sub>last</sub> − R, unless it differs by more than 0.2 s from <i>a</i><sub>last</sub> + median(<i>r</i> − <i>a</i>
/// over the first 50 rows) − R, which is then used. An ADC with one row or without the <c>inhibitTime</c> column uses the
/// header: look = runTime − inhibitTime.
/// </para>
/// <para>
/// Not computable (<see cref="MlAnalyzedSource.None"/>, all three values NaN, <see cref="Reason"/> set): an empty ADC
/// (no triggers), a v2 ADC whose inhibit times are all 0 or that has fewer than two good rows when it needs a step, or
/// a header fallback without <c>runTime</c>/<c>inhibitTime</c>. A computed value may still be ≤ 0 on broken data;
/// concentrations are then left empty.
/// </para>
/// </summary>
public sealed record MlAnalyzed(double Milliliters, double LookTimeSeconds, double RunTimeSeconds, MlAnalyzedSource Source, string? Reason)
{
    public const double V1MillilitersPerSecond = 5.0 / 48000.0 * 40.0;
    public const double V2MillilitersPerMinute = 0.25;
    public const double V1MinProcessingSeconds = 0.073;
    public const double Ifcb5From2015MinProcessingSeconds = 0.050;

    private const double SecondsPerDay = 24 * 60 * 60;

    /// <summary>A value concentrations can divide by.</summary>
    public bool IsUsable => Source != MlAnalyzedSource.None && double.IsFinite(Milliliters) && Milliliters > 0;

    public static MlAnalyzed Unknown(string reason) => new(double.NaN, double.NaN, double.NaN, MlAnalyzedSource.None, reason);

    /// <summary>Computes a bin's ml_analyzed from its <c>.adc</c> (and, for some v2 bins, its <c>.hdr</c>).</summary>
    /// <param name="binPath">The bin's path without extension, or the path of any of its files.</param>
    /// <exception cref="FileNotFoundException">The <c>.adc</c> file is missing.</exception>
    /// <exception cref="InvalidDataException">The name is not a bin id, or an ADC row is too short or not numeric.</exception>
    public static MlAnalyzed Compute(string binPath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(binPath);
        var ext = Path.GetExtension(binPath);
        var stem = ext is ".adc" or ".roi" or ".hdr" ? binPath[..^ext.Length] : binPath;
        var lid = Path.GetFileName(stem);
        if (!BinId.TryParse(lid, out var id))
            throw new InvalidDataException(
                $"\"{lid}\" ({binPath}) is not an IFCB bin id; expected DYYYYMMDDTHHMMSS_IFCBnnn or IFCBn_YYYY_DDD_HHMMSS.");
        var adcPath = stem + ".adc";
        if (!File.Exists(adcPath))
            throw new FileNotFoundException($"Bin {lid}: the ADC file {adcPath} does not exist; ml_analyzed needs it.", adcPath);
        var headerPath = stem + ".hdr";
        var rows = AdcRows.Read(adcPath, id!);
        return id!.Schema == BinSchema.V1
            ? FromV1(id, rows)
            : FromV2(rows, () => File.Exists(headerPath) ? BinHeader.Read(headerPath) : null);
    }

    /// <summary>v1: from trigger, trigger-open and frame-grab times (see the type's summary).</summary>
    internal static MlAnalyzed FromV1(BinId id, AdcRows adc)
    {
        if (adc.Count == 0)
            return Unknown("the ADC file is empty (no triggers)");
        var schema = AdcSchema.V1;
        // IFCB5's processing got faster in June 2015 (pyifcb #67); other v1 instruments keep 0.073 s.
        var minProcessing = id.Instrument == 5 && id.Timestamp >= new DateTime(2015, 6, 1, 0, 0, 0, DateTimeKind.Utc)
            ? Ifcb5From2015MinProcessingSeconds
            : V1MinProcessingSeconds;
        var seen = new HashSet<double>();
        var open = new List<double>();
        var grab = new List<double>();
        for (var i = 0; i < adc.Count; i++)
        {
            // A trigger with several ROIs has one row per ROI; only its first row's times describe the trigger.
            if (!seen.Add(adc.Value(i, schema.Trigger, "trigger")))
                continue;
            open.Add(WrapMidnight(adc.Value(i, schema.TriggerOpenTime!.Value, "triggerOpenTime")));
            grab.Add(WrapMidnight(adc.Value(i, schema.FrameGrabTime!.Value, "frameGrabTime")));
        }
        var run = grab[^1];
        var processing = 0.0;
        for (var i = 1; i < open.Count; i++)
            processing += Math.Max(open[i] - grab[i - 1], minProcessing);
        var look = run - processing - minProcessing;
        return new MlAnalyzed(look * V1MillilitersPerSecond, look, run, MlAnalyzedSource.Adc, null);
    }

    /// <summary>v2: from ADC time, run time and inhibit time, or the header (see the type's summary).</summary>
    internal static MlAnalyzed FromV2(AdcRows adc, Func<BinHeader?> header)
    {
        var schema = AdcSchema.V2;
        if (adc.Count == 1 || (adc.Count > 0 && adc.FirstRowColumns <= schema.InhibitTime!.Value))
            return FromHeader(header(), adc.Count == 1 ? "the ADC has one row" : "the ADC has no inhibitTime column");
        if (adc.Count == 0)
            return Unknown("the ADC file is empty (no triggers)");
        var n = adc.Count;
        var adcTime = adc.Column(schema.AdcTime!.Value, "ADC_time");
        var run = adc.Column(schema.RunTime!.Value, "runTime");
        var inhibit = adc.Column(schema.InhibitTime!.Value, "inhibitTime");
        if (inhibit.Sum() == 0)
            return Unknown("every inhibitTime in the ADC is 0");

        // Rows where the inhibit counter was reset or jumped are bad; each is later counted as one typical step.
        var good = new List<int> { 0 };
        for (var i = 1; i < n; i++)
        {
            var step = inhibit[i] - inhibit[i - 1];
            if (inhibit[i] > 0 && step > -0.1 && step < 5)
                good.Add(i);
        }
        var modeStep = ModeOfSteps(inhibit, good);
        double runOffset = 0, inhibitOffset = 0;
        if (run[1] - adcTime[1] > 10)
        {
            if (modeStep is null)
                return Unknown("fewer than two ADC rows have a usable inhibitTime");
            // Row 1, not row 0: the first row is sometimes bad; two typical steps cover the rows before it.
            runOffset = run[1] - adcTime[1];
            inhibitOffset = inhibit[1] + 2 * modeStep.Value;
        }
        double inhibitTotal;
        if (good.Count == n)
            inhibitTotal = inhibit[^1] - inhibitOffset;
        else if (modeStep is { } step)
            inhibitTotal = inhibit[good[^1]] + (n - good.Count) * step - inhibitOffset;
        else
            return Unknown("fewer than two ADC rows have a usable inhibitTime");

        var runTime = run[^1] - runOffset;
        var first = Math.Min(n, 50);
        var clockOffset = Median([.. Enumerable.Range(0, first).Select(i => run[i] - adcTime[i])]);
        var runFromAdcClock = adcTime[^1] + clockOffset - runOffset;
        if (Math.Abs(runTime - runFromAdcClock) > 0.2)
            runTime = runFromAdcClock;
        var look = runTime - inhibitTotal;
        return new MlAnalyzed(V2MillilitersPerMinute * look / 60, look, runTime, MlAnalyzedSource.Adc, null);
    }

    private static MlAnalyzed FromHeader(BinHeader? header, string why)
    {
        if (header?.RunTime is not { } run || header.InhibitTime is not { } inhibit)
            return Unknown($"{why}, and the .hdr has no runTime and inhibitTime");
        var look = run - inhibit;
        return new MlAnalyzed(V2MillilitersPerMinute * look / 60, look, run, MlAnalyzedSource.Header, null);
    }

    private static double WrapMidnight(double seconds) => seconds < 0 ? seconds + SecondsPerDay : seconds;

    /// <summary>The most frequent step between consecutive good rows, rounded to 4 decimals; the smallest on ties (pandas).</summary>
    private static double? ModeOfSteps(double[] inhibit, List<int> good)
    {
        if (good.Count < 2)
            return null;
        return Enumerable.Range(1, good.Count - 1)
            .Select(k => Math.Round(inhibit[good[k]] - inhibit[good[k - 1]], 4, MidpointRounding.ToEven))
            .GroupBy(step => step)
            .OrderByDescending(g => g.Count())
            .ThenBy(g => g.Key)
            .First().Key;
    }

    private static double Median(double[] values)
    {
        Array.Sort(values);
        var middle = values.Length / 2;
        return values.Length % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
    }
}

/// <summary>
/// An ADC file's rows as text fields, for the columns ml_analyzed reads by <see cref="AdcSchema"/> name (RawBin reads
/// only the ROI columns and needs the <c>.roi</c>; ml_analyzed needs every row's times and no images).
/// </summary>
internal sealed class AdcRows
{
    private readonly string _path;
    private readonly List<(int Line, string[] Fields)> _rows;

    private AdcRows(string path, List<(int, string[])> rows)
    {
        _path = path;
        _rows = rows;
    }

    public int Count => _rows.Count;

    public int FirstRowColumns => _rows.Count == 0 ? 0 : _rows[0].Fields.Length;

    public static AdcRows Read(string path, BinId id)
    {
        var length = new FileInfo(path).Length;
        if (length > RawBin.MaxAdcBytes)
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                $"bin {id.Lid}: the ADC file {path} is {length} bytes; the limit is {RawBin.MaxAdcBytes}, far above any real bin's."));
        var rows = new List<(int, string[])>();
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (!string.IsNullOrWhiteSpace(line))
                rows.Add((lineNumber, line.Split(',')));
        }
        return new AdcRows(path, rows);
    }

    /// <exception cref="InvalidDataException">The row is too short for <paramref name="column"/> or the cell is not a number.</exception>
    public double Value(int row, int column, string name)
    {
        var (line, fields) = _rows[row];
        if (column >= fields.Length)
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                $"{_path} line {line}: {fields.Length} columns, no column {column} ({name}); the ADC file is truncated or corrupt."));
        return double.TryParse(fields[column].AsSpan().Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
               && double.IsFinite(value)
            ? value
            : throw new InvalidDataException($"{_path} line {line}: column {column} ({name}) is \"{fields[column]}\", not a number.");
    }

    public double[] Column(int column, string name) => [.. Enumerable.Range(0, Count).Select(i => Value(i, column, name))];
}
