using System.Globalization;
using Ifcb.Platform;
using Microsoft.Win32.SafeHandles;

namespace Ifcb.Data.Bins;

/// <summary>
/// A raw IFCB bin (<c>.adc</c> + <c>.roi</c>; the <c>.hdr</c> is not needed for images). <see cref="Open"/> parses
/// the ADC and checks every number a corrupt or crafted ADC could use against the bin or the process: each ROI is at
/// most <see cref="Limits.MaxImagePixels"/> pixels and lies inside the <c>.roi</c> file, the ROIs together fit in it
/// (real bins store them one after another, so reading a bin never needs more memory than its <c>.roi</c> file), and
/// v1 pairs stitch into a bounded image (see <see cref="V1Stitcher"/>). A truncated or corrupt bin fails there with an
/// <see cref="InvalidDataException"/> naming the bin, the ROI and the problem, never later with a wrong image, an
/// overflow or a huge allocation.
/// </summary>
public sealed class RawBin
{
    /// <summary>Largest ADC file read (real ones are a few MB: ~250 bytes per trigger).</summary>
    public const long MaxAdcBytes = 128L << 20;

    private RawBin(BinId id, string adcPath, string roiPath, int adcRowCount, IReadOnlyList<RoiRecord> rois, long roiFileLength)
    {
        Id = id;
        AdcPath = adcPath;
        RoiPath = roiPath;
        AdcRowCount = adcRowCount;
        Rois = rois;
        RoiFileLength = roiFileLength;
    }

    public BinId Id { get; }
    public BinSchema Schema => Id.Schema;
    public string AdcPath { get; }
    public string RoiPath { get; }

    /// <summary>Number of ADC rows (triggers and ROIs, including rows of width 0).</summary>
    public int AdcRowCount { get; }

    /// <summary>ADC rows with a ROI (width &gt; 0), in target-number order.</summary>
    public IReadOnlyList<RoiRecord> Rois { get; }

    public long RoiFileLength { get; }

    /// <summary>
    /// Opens a bin given its path without extension (<c>dir/D20130526T095207_IFCB013</c>) or the path of any of its
    /// three files.
    /// </summary>
    /// <exception cref="FileNotFoundException">The <c>.adc</c> or <c>.roi</c> file is missing.</exception>
    /// <exception cref="InvalidDataException">The name is not a bin id, or the ADC/ROI data are empty, malformed or truncated.</exception>
    public static RawBin Open(string binPath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(binPath);
        var ext = Path.GetExtension(binPath);
        var stem = ext is ".adc" or ".roi" or ".hdr" ? binPath[..^ext.Length] : binPath;
        var lid = Path.GetFileName(stem);
        if (!BinId.TryParse(lid, out var id))
            throw new InvalidDataException(
                $"\"{lid}\" ({binPath}) is not an IFCB bin id; expected DYYYYMMDDTHHMMSS_IFCBnnn or IFCBn_YYYY_DDD_HHMMSS.");
        var adcPath = stem + ".adc";
        var roiPath = stem + ".roi";
        if (!File.Exists(adcPath))
            throw new FileNotFoundException($"Bin {lid}: the ADC file {adcPath} does not exist.", adcPath);
        if (!File.Exists(roiPath))
            throw new FileNotFoundException($"Bin {lid}: the ROI file {roiPath} does not exist (a bin needs .adc and .roi).", roiPath);

        var (rowCount, rois) = ParseAdc(id!, adcPath);
        var roiLength = new FileInfo(roiPath).Length;
        long total = 0;
        foreach (var roi in rois)
        {
            if (roi.StartByte < 0)
                throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                    $"bin {lid}: ROI {roi.TargetNumber} starts outside the .roi file (byte {roi.StartByte}); " +
                    $"the ADC file {adcPath} is corrupt."));
            if (roi.StartByte >= roiLength)
                throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                    $"bin {lid}: ROI {roi.TargetNumber} starts past the end of the .roi file (byte {roi.StartByte}; " +
                    $"{roiPath} has {roiLength} bytes); the .roi file is truncated or does not belong to {adcPath}."));
            // Subtracting keeps a start byte near long.MaxValue from overflowing the sum.
            if (roi.ByteCount > roiLength - roi.StartByte)
                throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                    $"bin {lid}: {roiPath}: ROI {roi.TargetNumber} at byte {roi.StartByte} needs {roi.ByteCount} bytes but .roi has " +
                    $"{roiLength} (ROI is {roi.Width}x{roi.Height}); the .roi file is truncated or does not belong to {adcPath}."));
            total += roi.ByteCount;
        }
        if (total > roiLength)
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                $"bin {lid}: its {rois.Count} ROIs need {total} bytes but {roiPath} has {roiLength}, so some overlap in the .roi file " +
                $"(real bins store them one after another); the ADC file {adcPath} is corrupt."));
        if (id!.Schema == BinSchema.V1)
        {
            foreach (var (first, second) in V1Stitcher.FindPairs(rois))
                V1Stitcher.CheckStitchedSize(first, second, lid);
        }
        return new RawBin(id, adcPath, roiPath, rowCount, rois, roiLength);
    }

    private static (int RowCount, List<RoiRecord> Rois) ParseAdc(BinId id, string adcPath)
    {
        var adcLength = new FileInfo(adcPath).Length;
        if (adcLength > MaxAdcBytes)
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                $"bin {id.Lid}: the ADC file {adcPath} is {adcLength} bytes; the limit is {MaxAdcBytes} " +
                $"({nameof(RawBin)}.{nameof(MaxAdcBytes)}), far above any real bin's."));
        var schema = AdcSchema.For(id.Schema);
        var rois = new List<RoiRecord>();
        var rowCount = 0;
        using var reader = new StreamReader(adcPath);
        var lineNumber = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
                continue;
            rowCount++;
            var fields = line.Split(',');
            if (fields.Length < schema.RequiredColumns)
                throw new InvalidDataException(
                    $"{adcPath} line {lineNumber}: {fields.Length} columns, " +
                    $"but a {id.Schema} ADC row needs at least {schema.RequiredColumns}.");
            var width = Field(fields, schema.RoiWidth, adcPath, lineNumber, "RoiWidth");
            if (width == 0)
                continue;
            var height = Field(fields, schema.RoiHeight, adcPath, lineNumber, "RoiHeight");
            if (width < 0 || height <= 0)
                throw new InvalidDataException($"{adcPath} line {lineNumber}: ROI size {width}x{height} is not positive.");
            // Each side alone first, so the product cannot overflow.
            if (width > Limits.MaxImagePixels || height > Limits.MaxImagePixels || width * height > Limits.MaxImagePixels)
                throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                    $"bin {id.Lid}: ROI {rowCount} declares {width}×{height} px; the limit is {Limits.MaxImagePixels} px " +
                    $"(limit {nameof(Limits.MaxImagePixels)}), so the ADC file {adcPath} (line {lineNumber}) is corrupt."));
            int Coordinate(int column, string name, long min) =>
                (int)InRange(Field(fields, column, adcPath, lineNumber, name), min, int.MaxValue, id, rowCount, name, adcPath, lineNumber);
            rois.Add(new RoiRecord(
                TargetNumber: rowCount,
                Trigger: Coordinate(schema.Trigger, "trigger", int.MinValue),
                X: Coordinate(schema.RoiX, "RoiX", 0),
                Y: Coordinate(schema.RoiY, "RoiY", 0),
                Width: (int)width,
                Height: (int)height,
                StartByte: Field(fields, schema.StartByte, adcPath, lineNumber, "StartByte")));
        }
        if (rowCount == 0)
            throw new InvalidDataException($"{adcPath} is empty: bin {id.Lid} has no ADC rows (no triggers), so it has no images.");
        return (rowCount, rois);
    }

    private static long InRange(long value, long min, long max, BinId id, int roi, string name, string adcPath, int lineNumber) =>
        value >= min && value <= max
            ? value
            : throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                $"bin {id.Lid}: ROI {roi} has {name} {value}, outside {min}..{max}; " +
                $"the ADC file {adcPath} (line {lineNumber}) is corrupt."));

    // ADC cells are written as integers for the ROI columns, but pandas would accept "96.0"; so do we, if it is whole.
    private static long Field(string[] fields, int column, string adcPath, int lineNumber, string name)
    {
        var text = fields[column].AsSpan().Trim();
        if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
            return value;
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d == Math.Floor(d)
            && Math.Abs(d) < int.MaxValue)
            return (long)d;
        throw new InvalidDataException($"{adcPath} line {lineNumber}: column {column} ({name}) is \"{fields[column]}\", not an integer.");
    }

    /// <summary>Reads one ROI: <c>W*H</c> bytes at <c>StartByte</c>, as <c>H</c> rows of <c>W</c> pixels.</summary>
    public GrayImage ReadRoi(RoiRecord roi)
    {
        ArgumentNullException.ThrowIfNull(roi);
        using var handle = File.OpenHandle(RoiPath);
        return ReadRoi(handle, roi);
    }

    /// <summary>Reads the ROI with the given 1-based target number.</summary>
    /// <exception cref="KeyNotFoundException">No ROI (width &gt; 0) has that target number.</exception>
    public GrayImage ReadRoi(int targetNumber) =>
        ReadRoi(Rois.FirstOrDefault(r => r.TargetNumber == targetNumber)
                ?? throw new KeyNotFoundException($"Bin {Id.Lid} has no ROI with target number {targetNumber}."));

    private GrayImage ReadRoi(SafeFileHandle handle, RoiRecord roi)
    {
        var pixels = new byte[roi.ByteCount];
        var read = 0;
        while (read < pixels.Length)
        {
            var n = RandomAccess.Read(handle, pixels.AsSpan(read), roi.StartByte + read);
            if (n == 0)
                throw new InvalidDataException(
                    $"{RoiPath}: ROI {roi.TargetNumber} at byte {roi.StartByte} needs {roi.ByteCount} bytes " +
                    $"but the file ended after {read}; it changed since the bin was opened.");
            read += n;
        }
        return new GrayImage(roi.Width, roi.Height, pixels);
    }

    /// <summary>
    /// All images of the bin in target-number order. For v1 bins with <paramref name="stitchV1"/> (neuston's RUN does
    /// this), overlapping ROI pairs of one trigger are merged and the second target is dropped (see <see cref="V1Stitcher"/>).
    /// </summary>
    public IReadOnlyList<RoiImage> ReadImages(bool stitchV1 = true)
    {
        using var handle = File.OpenHandle(RoiPath);
        var raw = Rois.Select(r => new RoiImage(Id, r.TargetNumber, ReadRoi(handle, r))).ToList();
        return stitchV1 && Schema == BinSchema.V1 ? V1Stitcher.Stitch(Rois, raw) : raw;
    }
}
