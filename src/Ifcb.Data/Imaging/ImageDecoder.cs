using System.Globalization;
using System.Runtime.InteropServices;
using Ifcb.Platform;
using SkiaSharp;

namespace Ifcb.Data.Imaging;

/// <summary>
/// Decodes image files with SkiaSharp (PNG, JPEG, BMP, WEBP, GIF; not TIFF). Grayscale sources stay one channel;
/// anything else becomes RGB with alpha dropped (not composited), as PIL's <c>convert('RGB')</c> does.
/// No colour management is applied: pixel values are the file's own.
/// Sizes are checked before anything is allocated: a header declaring more than <see cref="Limits.MaxImagePixels"/>
/// pixels, or a file larger than <see cref="MaxFileBytes"/>, is refused as undecodable (a 100-byte PNG can declare
/// 40000×40000 RGBA, 6.4 GB once decoded).
/// </summary>
public static class ImageDecoder
{
    /// <summary>
    /// Largest encoded file read: an image within the pixel budget needs at most 4 bytes a pixel even uncompressed
    /// (BMP), so anything over twice that is not an image this platform would decode.
    /// </summary>
    public const long MaxFileBytes = Limits.MaxImagePixels * 8;

    /// <exception cref="InvalidDataException">
    /// The bytes are not a decodable image, or it has more than <see cref="Limits.MaxImagePixels"/> pixels; the message
    /// names <paramref name="sourceName"/>.
    /// </exception>
    public static DecodedImage Decode(ReadOnlySpan<byte> encoded, string sourceName)
    {
        if (encoded.IsEmpty)
            throw new InvalidDataException($"{sourceName}: the file is empty (0 bytes), not an image.");
        using var data = SKData.CreateCopy(encoded);
        using var stream = new SKMemoryStream(data);
        using var codec = SKCodec.Create(stream, out var createResult);
        if (codec is null)
            throw new InvalidDataException(
                $"{sourceName}: not a decodable image ({createResult}); supported formats are PNG, JPEG, BMP, WEBP and GIF.");
        var width = codec.Info.Width;
        var height = codec.Info.Height;
        if (width <= 0 || height <= 0)
            throw new InvalidDataException($"{sourceName}: image has size {width}x{height}.");
        if ((long)width * height > Limits.MaxImagePixels)
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                $"{sourceName}: the image is {width}×{height} px ({(long)width * height} px); the limit is {Limits.MaxImagePixels} px " +
                $"(limit {nameof(Limits.MaxImagePixels)}), so it was not decoded."));
        var gray = codec.Info.ColorType == SKColorType.Gray8;
        var info = new SKImageInfo(width, height, gray ? SKColorType.Gray8 : SKColorType.Rgba8888,
            gray ? SKAlphaType.Opaque : SKAlphaType.Unpremul);
        var decoded = new byte[info.BytesSize64];
        SKCodecResult result;
        var pin = GCHandle.Alloc(decoded, GCHandleType.Pinned);
        try
        {
            result = codec.GetPixels(info, pin.AddrOfPinnedObject(), info.RowBytes, new SKCodecOptions());
        }
        finally
        {
            pin.Free();
        }
        if (result != SKCodecResult.Success)
            throw new InvalidDataException($"{sourceName}: image data is corrupt or truncated (SkiaSharp: {result}).");
        if (gray)
        {
            return info.RowBytes == width
                ? new DecodedImage(width, height, 1, decoded)
                : new DecodedImage(width, height, 1, Compact(decoded, width, height, info.RowBytes, 1, 1));
        }
        return new DecodedImage(width, height, 3, Compact(decoded, width, height, info.RowBytes, 4, 3));
    }

    /// <summary>Reads and decodes a file.</summary>
    /// <exception cref="InvalidDataException">The file is not a decodable image, or is too large to be one.</exception>
    public static DecodedImage DecodeFile(string path)
    {
        using var file = File.OpenRead(path);
        if (file.Length > MaxFileBytes)
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                $"{path}: the file is {file.Length} bytes; no image within the pixel limit ({Limits.MaxImagePixels} px, " +
                $"limit {nameof(Limits.MaxImagePixels)}) is larger than {MaxFileBytes} bytes."));
        var encoded = new byte[file.Length];
        file.ReadExactly(encoded);
        return Decode(encoded, path);
    }

    private static byte[] Compact(byte[] source, int width, int height, int rowBytes, int sourceChannels, int channels)
    {
        var result = new byte[width * height * channels];
        for (var y = 0; y < height; y++)
        {
            var src = source.AsSpan(y * rowBytes);
            var dst = result.AsSpan(y * width * channels);
            for (var x = 0; x < width; x++)
            {
                for (var c = 0; c < channels; c++)
                    dst[(x * channels) + c] = src[(x * sourceChannels) + c];
            }
        }
        return result;
    }
}
