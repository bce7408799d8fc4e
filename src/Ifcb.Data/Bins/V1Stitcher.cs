using System.Globalization;
using Ifcb.Platform;

namespace Ifcb.Data.Bins;

/// <summary>
/// Stitching of IFCB v1 (prototype) ROIs, following pyifcb's <c>stitching.py</c> rule: two consecutive ROIs
/// (width &gt; 0) of the same trigger whose boxes overlap by more than 2 px on both axes are one object cut in two.
/// They become one image covering the bounding box of both (the second ROI drawn over the first); pixels neither ROI
/// covers are filled with the rounded mean of the real pixels on the outer boundary of the (4-connected dilated) gap.
/// The second target of the pair is dropped. Commercial (v2) bins are never stitched.
/// The stitched image is the pair's bounding box, which a corrupt ADC can make enormous (3×46340 and 46340×3 crossing:
/// 2.1 Gpx from 278 KB of pixels), so it is capped: at most <see cref="MaxAreaRatio"/> times the two ROIs' own area
/// and at most <see cref="Limits.MaxImagePixels"/>. Real pairs are two halves of one object (box ≈ 1–2× their area).
/// </summary>
public static class V1Stitcher
{
    private const int OverlapThreshold = 2;

    /// <summary>Largest stitched box, relative to the area of the two ROIs it is made of.</summary>
    public const int MaxAreaRatio = 16;

    /// <summary>The stitched pairs (first, second) of a ROI list in target order.</summary>
    public static IReadOnlyList<(RoiRecord First, RoiRecord Second)> FindPairs(IReadOnlyList<RoiRecord> rois)
    {
        ArgumentNullException.ThrowIfNull(rois);
        var pairs = new List<(RoiRecord, RoiRecord)>();
        for (var i = 0; i + 1 < rois.Count; i++)
        {
            var a = rois[i];
            var b = rois[i + 1];
            if (a.Trigger == b.Trigger && Overlap(a, b))
                pairs.Add((a, b));
        }
        return pairs;
    }

    // In long: X + Width can pass int.MaxValue for a corrupt ADC.
    private static bool Overlap(RoiRecord a, RoiRecord b) =>
        a.X < (long)b.X + b.Width - OverlapThreshold && (long)a.X + a.Width > (long)b.X + OverlapThreshold &&
        a.Y < (long)b.Y + b.Height - OverlapThreshold && (long)a.Y + a.Height > (long)b.Y + OverlapThreshold;

    /// <summary>Width and height of the image stitched from <paramref name="a"/> and <paramref name="b"/> (their bounding box).</summary>
    public static (long Width, long Height) StitchedSize(RoiRecord a, RoiRecord b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return (Math.Max((long)a.X + a.Width, (long)b.X + b.Width) - Math.Min(a.X, b.X),
                Math.Max((long)a.Y + a.Height, (long)b.Y + b.Height) - Math.Min(a.Y, b.Y));
    }

    /// <summary>Throws unless the pair's stitched image is within the caps (see the class remarks).</summary>
    /// <param name="binId">The bin, for the message.</param>
    /// <exception cref="InvalidDataException">The box is too large; the message names both ROIs, the box and the cap.</exception>
    public static void CheckStitchedSize(RoiRecord a, RoiRecord b, string? binId = null)
    {
        var (width, height) = StitchedSize(a, b);
        var own = a.ByteCount + b.ByteCount;
        var cap = Math.Min(Limits.MaxImagePixels, MaxAreaRatio * own);
        // Each side is below 2^32 (ints), so the product fits in a long.
        if (width * height > cap)
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                $"{(binId is null ? "" : $"bin {binId}: ")}ROIs {a.TargetNumber} and {b.TargetNumber} (one trigger, overlapping) " +
                $"would stitch into a {width}×{height} px image ({width * height} px) from {own} px of ROIs; " +
                $"the cap is {cap} px ({MaxAreaRatio}× their area, " +
                $"at most {nameof(Limits.MaxImagePixels)} = {Limits.MaxImagePixels}), so the ADC is corrupt."));
    }

    /// <summary>
    /// Applies stitching to a bin's raw images (same order as <paramref name="rois"/>). As in pyifcb, when three
    /// ROIs of one trigger chain-overlap, only the first pair is stitched and both later targets are dropped.
    /// </summary>
    public static IReadOnlyList<RoiImage> Stitch(IReadOnlyList<RoiRecord> rois, IReadOnlyList<RoiImage> rawImages)
    {
        ArgumentNullException.ThrowIfNull(rois);
        ArgumentNullException.ThrowIfNull(rawImages);
        if (rois.Count != rawImages.Count)
            throw new ArgumentException($"{rois.Count} ROI records but {rawImages.Count} images; pass the bin's full ROI list.",
                nameof(rawImages));
        var pairs = FindPairs(rois);
        var firstOfPair = pairs.ToDictionary(p => p.First.TargetNumber);
        var dropped = pairs.Select(p => p.Second.TargetNumber).ToHashSet();
        var byTarget = rawImages.ToDictionary(r => r.TargetNumber);
        var result = new List<RoiImage>(rawImages.Count);
        foreach (var image in rawImages)
        {
            if (dropped.Contains(image.TargetNumber))
                continue;
            result.Add(firstOfPair.TryGetValue(image.TargetNumber, out var pair)
                ? image with { Image = StitchPair(pair.First, image.Image, pair.Second, byTarget[pair.Second.TargetNumber].Image) }
                : image);
        }
        return result;
    }

    /// <summary>Merges two overlapping ROIs into one infilled image of their bounding box.</summary>
    /// <exception cref="InvalidDataException">The box is over the caps (<see cref="RawBin.Open"/> refuses such bins first).</exception>
    public static GrayImage StitchPair(RoiRecord a, GrayImage aImage, RoiRecord b, GrayImage bImage)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        ArgumentNullException.ThrowIfNull(aImage);
        ArgumentNullException.ThrowIfNull(bImage);
        CheckStitchedSize(a, b);
        var x0 = Math.Min(a.X, b.X);
        var y0 = Math.Min(a.Y, b.Y);
        var (longWidth, longHeight) = StitchedSize(a, b);
        var (width, height) = ((int)longWidth, (int)longHeight);
        var pixels = new byte[width * height];
        var missing = new bool[width * height];
        Array.Fill(missing, true);
        foreach (var (roi, image) in new[] { (a, aImage), (b, bImage) })
        {
            for (var y = 0; y < roi.Height; y++)
            {
                var dst = ((roi.Y - y0 + y) * width) + (roi.X - x0);
                image.Row(y).CopyTo(pixels.AsSpan(dst, roi.Width));
                missing.AsSpan(dst, roi.Width).Clear();
            }
        }
        var fill = InfillValue(pixels, missing, width, height);
        for (var i = 0; i < pixels.Length; i++)
        {
            if (missing[i])
                pixels[i] = fill;
        }
        return new GrayImage(width, height, pixels);
    }

    // pyifcb: boundary = find_boundary(dilate(mask)) with edges copied inward, then the mean of the unmasked pixels there.
    private static byte InfillValue(byte[] pixels, bool[] missing, int width, int height)
    {
        var dilated = new bool[missing.Length];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                dilated[(y * width) + x] = IsSet(missing, x, y, width, height) || IsSet(missing, x - 1, y, width, height) ||
                                           IsSet(missing, x + 1, y, width, height) || IsSet(missing, x, y - 1, width, height) ||
                                           IsSet(missing, x, y + 1, width, height);
            }
        }
        // A dilated pixel is on the boundary when one of its 4 neighbours is outside the dilated region (or the image).
        var boundary = new bool[missing.Length];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                boundary[(y * width) + x] = dilated[(y * width) + x] &&
                    !(IsSet(dilated, x - 1, y, width, height) && IsSet(dilated, x + 1, y, width, height) &&
                      IsSet(dilated, x, y - 1, width, height) && IsSet(dilated, x, y + 1, width, height));
            }
        }
        if (width >= 2 && height >= 2)
        {
            for (var y = 0; y < height; y++)
            {
                boundary[y * width] = boundary[(y * width) + 1];
                boundary[(y * width) + width - 1] = boundary[(y * width) + width - 2];
            }
            for (var x = 0; x < width; x++)
            {
                boundary[x] = boundary[width + x];
                boundary[((height - 1) * width) + x] = boundary[((height - 2) * width) + x];
            }
        }
        long sum = 0;
        var count = 0;
        for (var i = 0; i < pixels.Length; i++)
        {
            if (boundary[i] && !missing[i])
            {
                sum += pixels[i];
                count++;
            }
        }
        // Python's round() rounds halves to even.
        return count == 0 ? (byte)0 : (byte)Math.Round((double)sum / count, MidpointRounding.ToEven);
    }

    private static bool IsSet(bool[] mask, int x, int y, int width, int height) =>
        x >= 0 && y >= 0 && x < width && y < height && mask[(y * width) + x];
}
