using System.Globalization;
using Ifcb.Data.Bins;
using Ifcb.Data.Imaging;

namespace Ifcb.Data.Tests;

public class BinTests
{
    [Fact]
    public void ParsesV2AndV1BinIds()
    {
        var v2 = BinId.Parse("D20130526T095207_IFCB013");
        Assert.Equal(BinSchema.V2, v2.Schema);
        Assert.Equal(13, v2.Instrument);
        Assert.Equal(2013, v2.Year);
        Assert.Equal("20130526", v2.DateString);
        Assert.Equal(new DateTime(2013, 5, 26, 9, 52, 7, DateTimeKind.Utc), v2.Timestamp);
        Assert.Equal("D20130526T095207_IFCB013_00007", v2.RoiId(7));

        var v1 = BinId.Parse("IFCB5_2012_028_081515");
        Assert.Equal(BinSchema.V1, v1.Schema);
        Assert.Equal(5, v1.Instrument);
        Assert.Equal(2012, v1.Year);
        Assert.Equal("2012_028", v1.DateString);
        Assert.Equal(new DateTime(2012, 1, 28, 8, 15, 15, DateTimeKind.Utc), v1.Timestamp);

        Assert.False(BinId.TryParse("decoy", out _));
        Assert.False(BinId.TryParse("D20131326T095207_IFCB013", out _));
        Assert.False(BinId.TryParse("IFCB5_2013_366_081515", out _));
        Assert.Contains("not an IFCB bin id", Assert.Throws<FormatException>(() => BinId.Parse("x")).Message);
    }

    [Fact]
    public void WhiteV2BinHas118RowsAnd19Rois()
    {
        var bin = RawBin.Open(TestData.WhiteBin);
        Assert.Equal(118, bin.AdcRowCount);
        Assert.Equal(19, bin.Rois.Count);
        Assert.All(bin.Rois, r => Assert.True(r.Width > 0));
        var images = bin.ReadImages();
        Assert.Equal(19, images.Count);
        Assert.Equal(bin.Rois.Select(r => r.TargetNumber), images.Select(i => i.TargetNumber));
        // The .roi holds exactly the concatenated ROIs.
        Assert.Equal(bin.RoiFileLength, bin.Rois.Sum(r => r.ByteCount));
    }

    [Fact]
    public void RoiRowsAreWidthLongAndMatchRoiBytes()
    {
        var bin = RawBin.Open(TestData.WhiteBin);
        var roiBytes = File.ReadAllBytes(TestData.WhiteBin + ".roi");
        foreach (var roi in bin.Rois)
        {
            var image = bin.ReadRoi(roi);
            Assert.Equal((roi.Width, roi.Height), (image.Width, image.Height));
            Assert.Equal(roiBytes.AsSpan((int)roi.StartByte, roi.Width).ToArray(), image.Row(0).ToArray());
            Assert.Equal(roiBytes.AsSpan((int)(roi.StartByte + ((roi.Height - 1) * roi.Width)), roi.Width).ToArray(), image.Row(roi.Height - 1).ToArray());
        }
        // Target numbers are 1-based ADC rows: check one against the raw ADC text.
        var adcLines = File.ReadAllLines(TestData.WhiteBin + ".adc");
        var first = bin.Rois[0];
        var cells = adcLines[first.TargetNumber - 1].Split(',');
        Assert.Equal(first.Width, int.Parse(cells[15], CultureInfo.InvariantCulture));
        Assert.Equal(first.StartByte, long.Parse(cells[17], CultureInfo.InvariantCulture));
    }

    [Fact]
    public void V1BinHasSixRoisAndFiveImagesAfterStitching()
    {
        var bin = RawBin.Open(TestData.V1Bin);
        Assert.Equal(7, bin.AdcRowCount);
        Assert.Equal(6, bin.Rois.Count);
        Assert.Equal(6, bin.ReadImages(stitchV1: false).Count);
        var stitched = bin.ReadImages();
        Assert.Equal(5, stitched.Count);
        Assert.Equal([1, 2, 3, 5, 6], stitched.Select(i => i.TargetNumber));
        var pair = Assert.Single(V1Stitcher.FindPairs(bin.Rois));
        Assert.Equal((3, 4), (pair.First.TargetNumber, pair.Second.TargetNumber));
        var merged = stitched.Single(i => i.TargetNumber == 3).Image;
        // Bounding box of (210,432,180x86) and (360,457,113x45).
        Assert.Equal((473 - 210, 518 - 432), (merged.Width, merged.Height));
    }

    [Fact]
    public void StitchedImageMatchesPyifcbAlgorithmInNumpy()
    {
        var bin = RawBin.Open(TestData.V1Bin);
        var merged = bin.ReadImages().Single(i => i.TargetNumber == 3).Image;
        // pyifcb's Stitcher + infill_image, written out in numpy/scipy, reading the same .roi bytes.
        const string script = """
import sys, numpy as np
from scipy import ndimage as ndi
roi = open(sys.argv[1], 'rb').read()
def img(off, w, h): return np.frombuffer(roi[off:off+w*h], dtype=np.uint8).reshape(h, w)
a = dict(x=210, y=432, w=180, h=86, off=36927); b = dict(x=360, y=457, w=113, h=45, off=52407)
sx1, sy1 = min(a['x'], b['x']), min(a['y'], b['y'])
sx2, sy2 = max(a['x']+a['w'], b['x']+b['w']), max(a['y']+a['h'], b['y']+b['h'])
H, W = sy2-sy1, sx2-sx1
msk = np.ones((H, W), dtype=bool); im = np.zeros((H, W), dtype=np.uint8)
for r in (a, b):
    ry, rx = r['y']-sy1, r['x']-sx1
    msk[ry:ry+r['h'], rx:rx+r['w']] = False
    im[ry:ry+r['h'], rx:rx+r['w']] = img(r['off'], r['w'], r['h'])
raw = np.ma.array(im, mask=msk)
k = lambda B, K: ndi.correlate(np.array(B).astype(bool)*1, K, mode='constant') > 0
D = k(msk, np.array([[0,1,0],[1,1,1],[0,1,0]]))
bd = k(D, np.array([[0,-1,0],[-1,4,-1],[0,-1,0]]))
bd[:,0] = bd[:,1]; bd[:,-1] = bd[:,-2]; bd[0,:] = bd[1,:]; bd[-1,:] = bd[-2,:]
fill = int(round(np.mean(raw[bd])))
out = np.where(msk, fill, im).astype(np.uint8)
sys.stdout.write(out.tobytes().hex())
""";
        var expected = Convert.FromHexString(TestData.RunPython(script, TestData.V1Bin + ".roi").Trim());
        Assert.Equal(expected, merged.Pixels);
    }

    [Fact]
    public void PartialBinWithoutRoiFileFailsClearly()
    {
        var e = Assert.Throws<FileNotFoundException>(() => RawBin.Open(Path.Combine(TestData.Bins, "partial", "IFCB5_2012_028_081515")));
        Assert.Contains(".roi", e.Message);
        Assert.Contains("does not exist", e.Message);
    }

    [Theory]
    [InlineData("empty", "D20150411T205456_IFCB012")]
    [InlineData("empty", "IFCB5_2017_001_033645")]
    [InlineData("invalid", "D20130101T101010_IFCB099")]
    public void EmptyOrZeroByteBinsFailClearly(string folder, string lid)
    {
        var e = Assert.Throws<InvalidDataException>(() => RawBin.Open(Path.Combine(TestData.Bins, folder, lid)));
        Assert.Contains("no ADC rows", e.Message);
        Assert.Contains(lid + ".adc", e.Message);
    }

    [Fact]
    public void TruncatedRoiFileNamesTheRoiAndSizes()
    {
        var dir = TestData.TempDirectory();
        try
        {
            var stem = Path.Combine(dir, "IFCB5_2012_028_081515");
            File.Copy(TestData.V1Bin + ".adc", stem + ".adc");
            File.WriteAllBytes(stem + ".roi", File.ReadAllBytes(TestData.V1Bin + ".roi")[..60000]);
            var e = Assert.Throws<InvalidDataException>(() => RawBin.Open(stem));
            Assert.Contains("ROI 5 at byte 57492 needs 4725 bytes but .roi has 60000", e.Message);
            Assert.Contains(stem + ".roi", e.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void MalformedAdcCellIsReportedWithLine()
    {
        var dir = TestData.TempDirectory();
        try
        {
            var stem = Path.Combine(dir, "IFCB5_2012_028_081515");
            var lines = File.ReadAllLines(TestData.V1Bin + ".adc");
            lines[1] = lines[1].Replace(",238,", ",abc,", StringComparison.Ordinal);
            File.WriteAllLines(stem + ".adc", lines);
            File.Copy(TestData.V1Bin + ".roi", stem + ".roi");
            var e = Assert.Throws<InvalidDataException>(() => RawBin.Open(stem));
            Assert.Contains("line 2", e.Message);
            Assert.Contains("RoiWidth", e.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Theory]
    [InlineData(15, "2147483648", "declares 2147483648×34 px")]
    [InlineData(16, "2147483648", "declares 88×2147483648 px")]
    [InlineData(15, "20000000", "declares 20000000×34 px")]
    [InlineData(17, "9223372036854775000", "starts past the end of the .roi file")]
    [InlineData(17, "100000", "starts past the end of the .roi file")]
    [InlineData(17, "-5", "starts outside the .roi file")]
    [InlineData(13, "99999999999", "RoiX")]
    public void HostileAdcNumbersAreAPerBinFailureNamingTheRoi(int column, string value, string expected)
    {
        // Row 7 is the first ROI of the white bin, 88×34 px (v2 columns: 13 x, 14 y, 15 width, 16 height, 17 start byte).
        var dir = TestData.TempDirectory();
        try
        {
            var stem = CraftedBin(dir, TestData.WhiteBin, lines => lines[6] = ReplaceCell(lines[6], column, value));
            var e = Assert.Throws<InvalidDataException>(() => RawBin.Open(stem));
            Assert.Contains("bin D20130526T095207_IFCB013: ROI 7 ", e.Message, StringComparison.Ordinal);
            Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void RoisThatReuseTheSameRoiBytesAreRefusedInsteadOfMultiplyingMemory()
    {
        // Every real bin's ROIs lie one after the other in the .roi file; an ADC listing one ROI a thousand times
        // would make ReadImages hold a thousand copies of it.
        var dir = TestData.TempDirectory();
        try
        {
            var stem = CraftedBin(dir, TestData.WhiteBin, lines =>
            {
                var roi = lines[6];
                for (var i = 0; i < 1000; i++)
                    lines.Add(roi);
            });
            var e = Assert.Throws<InvalidDataException>(() => RawBin.Open(stem));
            Assert.Contains("bin D20130526T095207_IFCB013", e.Message, StringComparison.Ordinal);
            Assert.Contains("overlap", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void AV1PairWhoseStitchedBoxIsAMemoryBombIsRefusedWhenTheBinIsOpened()
    {
        // Two ROIs of one trigger, 3×46340 and 46340×3, crossing: 278 KB of pixels whose bounding box is 46340² = 2.1 Gpx.
        var dir = TestData.TempDirectory();
        try
        {
            var template = File.ReadAllLines(TestData.V1Bin + ".adc")[0];
            string Row(int x, int y, int width, int height, long start)
            {
                var cells = template.Split(',');
                (cells[0], cells[9], cells[10], cells[11], cells[12], cells[13]) = ("1", $"{x}", $"{y}", $"{width}", $"{height}", $"{start}");
                return string.Join(',', cells);
            }
            var stem = Path.Combine(dir, "IFCB5_2012_028_081515");
            File.WriteAllLines(stem + ".adc", [Row(100, 0, 3, 46340, 0), Row(0, 100, 46340, 3, 3 * 46340)]);
            File.WriteAllBytes(stem + ".roi", new byte[2 * 3 * 46340]);
            var e = Assert.Throws<InvalidDataException>(() => RawBin.Open(stem));
            Assert.Contains("bin IFCB5_2012_028_081515: ROIs 1 and 2", e.Message, StringComparison.Ordinal);
            Assert.Contains("46340×46340", e.Message, StringComparison.Ordinal);

        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    /// <summary>Copies a real bin into <paramref name="dir"/> with its ADC rows edited.</summary>
    internal static string CraftedBin(string dir, string bin, Action<List<string>> edit)
    {
        var stem = Path.Combine(dir, Path.GetFileName(bin));
        var lines = File.ReadAllLines(bin + ".adc").ToList();
        edit(lines);
        File.WriteAllLines(stem + ".adc", lines);
        File.Copy(bin + ".roi", stem + ".roi");
        return stem;
    }

    internal static string ReplaceCell(string row, int column, string value)
    {
        var cells = row.Split(',');
        cells[column] = value;
        return string.Join(',', cells);
    }

    [Fact]
    public void WalkerFindsBinsInAnyFolderAndReportsSkips()
    {
        var scan = BinDirectory.Scan(TestData.Bins);
        Assert.Equal(["IFCB5_2012_028_081515", "D20130526T095207_IFCB013"], scan.Bins.Select(b => b.Id.Lid));
        Assert.Equal("data/2012/IFCB5_2012_028", scan.Bins[0].RelativeDirectory);
        Assert.Equal("white/D2013/D201305/D20130526", scan.Bins[1].RelativeDirectory);
        string Reason(string fragment) => Assert.Single(scan.Skipped, s => s.Path.Contains(fragment, StringComparison.Ordinal)).Reason;
        Assert.Contains("missing .roi", Reason("partial"));
        Assert.Contains(".adc is empty (0 bytes)", Reason("empty/D20150411T205456_IFCB012"));
        Assert.Contains(".adc is empty (0 bytes)", Reason("empty/IFCB5_2017_001_033645"));
        Assert.Contains(".adc is empty", Reason("invalid"));
        Assert.Contains(".adc is empty", Reason("data/skip"));
        Assert.Contains("not an IFCB bin id", Reason("decoy.adc"));
        Assert.Equal(6, scan.Skipped.Count);
        Assert.All(scan.Bins, b => Assert.NotEmpty(b.Open().Rois));
    }

    [Fact]
    public void ExportWritesLosslessPngsWithFiveDigitTargets()
    {
        var dir = TestData.TempDirectory();
        try
        {
            var bin = RawBin.Open(TestData.V1Bin);
            var paths = RoiExporter.ExportPngs(bin, dir);
            Assert.Equal(
                ["IFCB5_2012_028_081515_00001.png", "IFCB5_2012_028_081515_00002.png", "IFCB5_2012_028_081515_00003.png",
                 "IFCB5_2012_028_081515_00005.png", "IFCB5_2012_028_081515_00006.png"],
                paths.Select(Path.GetFileName));
            var images = bin.ReadImages();
            for (var i = 0; i < paths.Count; i++)
            {
                var decoded = ImageDecoder.DecodeFile(paths[i]);
                Assert.Equal(1, decoded.Channels);
                Assert.Equal(images[i].Image.Pixels, decoded.Pixels);
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
