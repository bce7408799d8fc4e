using System.Globalization;
using Ifcb.Data.Bins;

namespace Ifcb.Data.Tests;

/// <summary>
/// ml_analyzed on every bin in testdata/bins and on small hand-made ADCs (tests/Ifcb.Data.Tests/ml-analyzed-cases) that
/// reach each branch of the algorithm. The expected values were derived by python/ml_analyzed_reference.py (Python
/// standard library only, reading the .adc/.hdr text; not our C#):
/// <c>python3 tests/Ifcb.Data.Tests/python/ml_analyzed_reference.py testdata/bins tests/Ifcb.Data.Tests/ml-analyzed-cases</c>.
/// The two real bins agree with pyifcb's own expected values (pyifcb <c>ifcb/tests/metrics/test_ml_analyzed.py</c>):
/// IFCB5_2012_028_081515 (0.003391470833333334 mL, 0.813953 s, 1.251953 s) and D20130526T095207_IFCB013
/// (4.8850699041666665 mL, 1172.416777 s, 1184.037103 s). All 15 values were also checked once, bit for bit, against
/// pyifcb 1.3.1's own functions (compute_ml_analyzed_s1_adc/_s2_adc run with Debian's pandas 1.5.3).
/// </summary>
public class MlAnalyzedTests
{
    private static readonly string CasesFolder =
        Path.Combine(Path.GetDirectoryName(TestData.Root)!, "tests", "Ifcb.Data.Tests", "ml-analyzed-cases");

    private const double NaN = double.NaN;

    /// <summary>Bin path (relative to testdata/bins) → (mL, look s, run s, source) from the reference script.</summary>
    private static readonly Dictionary<string, (double Ml, double Look, double Run, MlAnalyzedSource Source)> TestdataBins = new()
    {
        ["data/2012/IFCB5_2012_028/IFCB5_2012_028_081515"] = (0.003391470833333334, 0.8139530000000001, 1.251953, MlAnalyzedSource.Adc),
        // Same .adc as data/, without its .roi: ml_analyzed needs no images.
        ["partial/IFCB5_2012_028_081515"] = (0.003391470833333334, 0.8139530000000001, 1.251953, MlAnalyzedSource.Adc),
        ["white/D2013/D201305/D20130526/D20130526T095207_IFCB013"] = (4.8850699041666665, 1172.416777, 1184.037103, MlAnalyzedSource.Adc),
        // Empty .adc files (the v2 one's .hdr says runTime 0.621083 s, but pyifcb gives NaN for an ADC without rows).
        ["data/skip/IFCB5_2006_001_121212"] = (NaN, NaN, NaN, MlAnalyzedSource.None),
        ["empty/D20150411T205456_IFCB012"] = (NaN, NaN, NaN, MlAnalyzedSource.None),
        ["empty/IFCB5_2017_001_033645"] = (NaN, NaN, NaN, MlAnalyzedSource.None),
        ["invalid/D20130101T101010_IFCB099"] = (NaN, NaN, NaN, MlAnalyzedSource.None),
    };

    private static readonly Dictionary<string, (double Ml, double Look, double Run, MlAnalyzedSource Source)> Cases = new()
    {
        // Last two rows' inhibit counter reset to 0: last good 0.42 + 2 × mode step 0.1; run from the ADC clock, 18.3 + 0.05.
        ["D20200101T000000_IFCB101"] = (0.073875, 17.73, 18.35, MlAnalyzedSource.Adc),
        // runTime 20 s ahead of ADC_time: run 25 − 20, inhibit 0.45 − (0.15 + 2 × 0.1).
        ["D20200102T000000_IFCB101"] = (0.02041666666666667, 4.9, 5.0, MlAnalyzedSource.Adc),
        // One ADC row: the header's runTime 120.5 − inhibitTime 0.5.
        ["D20200103T000000_IFCB101"] = (0.5, 120.0, 120.5, MlAnalyzedSource.Header),
        // 22 columns, no inhibitTime: the header's 60.0 − 1.2.
        ["D20200104T000000_IFCB101"] = (0.245, 58.8, 60.0, MlAnalyzedSource.Header),
        // Every inhibitTime 0: not computable.
        ["D20200105T000000_IFCB101"] = (NaN, NaN, NaN, MlAnalyzedSource.None),
        // Last runTime jumps 5 s: 4.0 + median(runTime − ADC_time) 0.03 replaces it.
        ["D20200106T000000_IFCB101"] = (0.015125000000000001, 3.6300000000000003, 4.03, MlAnalyzedSource.Adc),
        // v1 across midnight (times after it are negative), trigger 2's second row ignored, one gap clamped to 0.073 s.
        ["IFCB1_2011_365_235959"] = (0.00439166666665454, 1.0539999999970897, 2.1999999999970896, MlAnalyzedSource.Adc),
        // IFCB5 after June 2015: the 0.02 s gap counts 0.050 s, and so does the final term.
        ["IFCB5_2016_100_120000"] = (0.0033333333333333327, 0.7999999999999998, 1.2, MlAnalyzedSource.Adc),
    };

    public static TheoryData<string> TestdataBinPaths => [.. TestdataBins.Keys];

    public static TheoryData<string> CaseNames => [.. Cases.Keys];

    [Theory]
    [MemberData(nameof(TestdataBinPaths))]
    public void Every_testdata_bin_matches_the_reference(string relative)
    {
        var actual = MlAnalyzed.Compute(Path.Combine(TestData.Bins, relative));
        AssertMatches(TestdataBins[relative], actual, relative);
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Each_branch_matches_the_reference(string lid)
    {
        var actual = MlAnalyzed.Compute(Path.Combine(CasesFolder, lid));
        AssertMatches(Cases[lid], actual, lid);
    }

    [Fact]
    public void The_table_covers_every_bin_in_testdata()
    {
        var found = Directory.EnumerateFiles(TestData.Bins, "*.adc", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(TestData.Bins, f[..^4]).Replace('\\', '/'))
            .Where(r => BinId.TryParse(Path.GetFileName(r), out _))
            .Order(StringComparer.Ordinal);
        Assert.Equal(TestdataBins.Keys.Order(StringComparer.Ordinal), found);
    }

    [Fact]
    public void The_reference_script_still_derives_these_constants()
    {
        var script = File.ReadAllText(Path.Combine(Path.GetDirectoryName(TestData.Root)!, "tests", "Ifcb.Data.Tests", "python",
            "ml_analyzed_reference.py"));
        var output = TestData.RunPython(script, TestData.Bins, CasesFolder);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(TestdataBins.Count + Cases.Count, lines.Length);
        foreach (var line in lines)
        {
            var f = line.Split('\t');
            var expected = TestdataBins.TryGetValue(f[1], out var bin) ? bin : Cases[f[1]];
            Assert.Equal(expected.Ml, Parse(f[2]));
            Assert.Equal(expected.Look, Parse(f[3]));
            Assert.Equal(expected.Run, Parse(f[4]));
            Assert.Equal(expected.Source switch { MlAnalyzedSource.Adc => "adc", MlAnalyzedSource.Header => "hdr", _ => "none" },
                f[5].Split(':')[0]);
        }
    }

    [Fact]
    public void Unknown_results_say_why()
    {
        var empty = MlAnalyzed.Compute(Path.Combine(TestData.Bins, "empty", "D20150411T205456_IFCB012"));
        Assert.False(empty.IsUsable);
        Assert.Contains("empty", empty.Reason, StringComparison.Ordinal);
        var noInhibit = MlAnalyzed.Compute(Path.Combine(CasesFolder, "D20200105T000000_IFCB101"));
        Assert.Contains("inhibitTime", noInhibit.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Header_fallback_without_times_is_unknown_not_zero()
    {
        var folder = TestData.TempDirectory();
        try
        {
            var stem = Path.Combine(folder, "D20200103T000000_IFCB101");
            File.Copy(Path.Combine(CasesFolder, "D20200103T000000_IFCB101.adc"), stem + ".adc");
            var noHeader = MlAnalyzed.Compute(stem);
            Assert.Equal(MlAnalyzedSource.None, noHeader.Source);
            Assert.Contains("runTime", noHeader.Reason, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void A_truncated_or_corrupt_adc_is_an_error_naming_the_line()
    {
        var folder = TestData.TempDirectory();
        try
        {
            var white = File.ReadAllLines(TestData.WhiteBin + ".adc");
            var truncated = Path.Combine(folder, "D20130526T095207_IFCB013");
            File.WriteAllLines(truncated + ".adc", [.. white.Take(5), white[5][..40]]);
            var cut = Assert.Throws<InvalidDataException>(() => MlAnalyzed.Compute(truncated));
            Assert.Contains("line 6", cut.Message, StringComparison.Ordinal);

            var v1 = File.ReadAllLines(TestData.V1Bin + ".adc");
            var corrupt = Path.Combine(folder, "IFCB5_2012_028_081515");
            File.WriteAllLines(corrupt + ".adc", [v1[0], v1[1].Replace(",.3808594,", ",x,", StringComparison.Ordinal)]);
            var text = Assert.Throws<InvalidDataException>(() => MlAnalyzed.Compute(corrupt));
            Assert.Contains("frameGrabTime", text.Message, StringComparison.Ordinal);

            Assert.Throws<FileNotFoundException>(() => MlAnalyzed.Compute(Path.Combine(folder, "D20200101T000000_IFCB101")));
            Assert.Throws<InvalidDataException>(() => MlAnalyzed.Compute(Path.Combine(folder, "not_a_bin")));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Header_times_parse_from_both_header_formats()
    {
        var v2 = BinHeader.Read(TestData.WhiteBin + ".hdr");
        Assert.Equal(1231.024861, v2.RunTime);
        Assert.Equal(11.622980, v2.InhibitTime);
        Assert.Equal("NORMAL", v2.Properties["RUNTYPE"]);

        var alt = BinHeader.Parse(["Imaging FlowCytobot Acquisition Software version 2.0; May 2010", "Sample Date ...",
            "run time = 1200.5 s  inhibit time = 10.25 s"]);
        Assert.Equal(1200.5, alt.RunTime);
        Assert.Equal(10.25, alt.InhibitTime);

        Assert.Null(BinHeader.Read(TestData.V1Bin + ".hdr").RunTime);
    }

    private static void AssertMatches((double Ml, double Look, double Run, MlAnalyzedSource Source) expected, MlAnalyzed actual, string bin)
    {
        Assert.True(expected.Source == actual.Source, $"{bin}: source {actual.Source} ({actual.Reason}), expected {expected.Source}");
        AssertClose(expected.Ml, actual.Milliliters, $"{bin} ml_analyzed");
        AssertClose(expected.Look, actual.LookTimeSeconds, $"{bin} look time");
        AssertClose(expected.Run, actual.RunTimeSeconds, $"{bin} run time");
        Assert.Equal(expected.Source == MlAnalyzedSource.None, actual.Reason is not null);
    }

    // Summation order is the same in both; 1e-12 relative still allows a last-bit difference in the rounding of a sum.
    private static void AssertClose(double expected, double actual, string what)
    {
        if (double.IsNaN(expected))
        {
            Assert.True(double.IsNaN(actual), $"{what}: {actual}, expected NaN");
            return;
        }
        Assert.True(Math.Abs(expected - actual) <= 1e-12 * Math.Max(1, Math.Abs(expected)), $"{what}: {actual:R}, expected {expected:R}");
    }

    private static double Parse(string text) =>
        text == "nan" ? NaN : double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
}
