namespace Ifcb.Data.Bins;

/// <summary>
/// Stitching of IFCB v1 (prototype) ROIs, following pyifcb's <c>stitching.py</c> rule: two consecutive ROIs
/// (width &gt; 0) of the same trigger whose boxes overlap by more than 2 px on both axes are one object cut in two.
/// They become one image covering the bounding box of both (the second ROI drawn over the first); pixels neither ROI
/// covers are filled with the rounded mean of the real pixels on the outer boundary of the (4-connected dilated) gap.
/// The second target of the pair is dropped. Commercial (v2) bins are never stitched.
/// </summary>
public static class V1Stitcher
{
    private const int OverlapThreshold = 2;

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

    private static bool Overlap(RoiRecord a, RoiRecord b) =>
        a.X < b.X + b.Width - OverlapThreshold && a.X + a.Width > b.X + OverlapThreshold &&
        a.Y < b.Y + b.Height - OverlapThreshold && a.Y + a.Height > b.Y + OverlapThreshold;

    /// <summary>
    /// Applies stitching to a bin's raw images (same order as <paramref name="rois"/>). As in pyifcb, when three
    /// ROIs of one trigger chain-overlap, only the first pair is stitched and both later targets are dropped.
    /// </summary>
    public static IReadOnlyList<RoiImage> Stitch(IReadOnlyList<RoiRecord> rois, IReadOnlyList<RoiImage> rawImages)
    {
        ArgumentNullException.ThrowIfNull(rois);
        ArgumentNullException.ThrowIfNull(rawImages);
        if (rois.Count != rawImages.Count)
            throw new ArgumentException($"{rois.Count} ROI records but {rawImages.Count} images; pass the bin's full ROI list.", nameof(rawImages));
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
    public static GrayImage StitchPair(RoiRecord a, GrayImage aImage, RoiRecord b, GrayImage bImage)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        ArgumentNullException.ThrowIfNull(aImage);
        ArgumentNullException.ThrowIfNull(bImage);
        var x0 = Math.Min(a.X, b.X);
        var y0 = Math.Min(a.Y, b.Y);
        var width = Math.Max(a.X + a.Width, b.X + b.Width) - x0;
        var height = Math.Max(a.Y + a.Height, b.Y + b.Height) - y0;
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
