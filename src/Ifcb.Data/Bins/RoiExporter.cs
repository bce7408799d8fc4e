using SkiaSharp;

namespace Ifcb.Data.Bins;

/// <summary>Writes bin images as lossless 8-bit grayscale PNGs named <c>{lid}_{target:00000}.png</c>.</summary>
public static class RoiExporter
{
    /// <summary>Encodes one image as a grayscale PNG.</summary>
    public static byte[] EncodePng(GrayImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var info = new SKImageInfo(image.Width, image.Height, SKColorType.Gray8, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        // Skia rows may be padded; copy row by row.
        var rowBytes = bitmap.RowBytes;
        var dst = bitmap.GetPixelSpan();
        for (var y = 0; y < image.Height; y++)
            image.Row(y).CopyTo(dst.Slice(y * rowBytes, image.Width));
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100)
                         ?? throw new InvalidOperationException(
                             $"SkiaSharp could not encode a {image.Width}x{image.Height} grayscale PNG.");
        return data.ToArray();
    }

    /// <summary>
    /// Writes every image of <paramref name="bin"/> (stitched for v1) into <paramref name="outputDirectory"/>; returns
    /// the paths.
    /// </summary>
    public static IReadOnlyList<string> ExportPngs(RawBin bin, string outputDirectory, bool stitchV1 = true)
    {
        ArgumentNullException.ThrowIfNull(bin);
        ArgumentException.ThrowIfNullOrWhiteSpace(outputDirectory);
        Directory.CreateDirectory(outputDirectory);
        var paths = new List<string>();
        foreach (var roi in bin.ReadImages(stitchV1))
        {
            var path = Path.Combine(outputDirectory, roi.RoiId + ".png");
            File.WriteAllBytes(path, EncodePng(roi.Image));
            paths.Add(path);
        }
        return paths;
    }
}
