using System.Runtime.InteropServices;
using SkiaSharp;

namespace Ifcb.Data.Imaging;

/// <summary>
/// Decodes image files with SkiaSharp (PNG, JPEG, BMP, WEBP, GIF; not TIFF). Grayscale sources stay one channel;
/// anything else becomes RGB with alpha dropped (not composited), as PIL's <c>convert('RGB')</c> does.
/// No colour management is applied: pixel values are the file's own.
/// </summary>
public static class ImageDecoder
{
    /// <exception cref="InvalidDataException">The bytes are not a decodable image; the message names <paramref name="sourceName"/>.</exception>
    public static DecodedImage Decode(ReadOnlySpan<byte> encoded, string sourceName)
    {
        if (encoded.IsEmpty)
            throw new InvalidDataException($"{sourceName}: the file is empty (0 bytes), not an image.");
        using var data = SKData.CreateCopy(encoded);
        using var stream = new SKMemoryStream(data);
        using var codec = SKCodec.Create(stream, out var createResult);
        if (codec is null)
            throw new InvalidDataException($"{sourceName}: not a decodable image ({createResult}); supported formats are PNG, JPEG, BMP, WEBP and GIF.");
        var width = codec.Info.Width;
        var height = codec.Info.Height;
        if (width <= 0 || height <= 0)
            throw new InvalidDataException($"{sourceName}: image has size {width}x{height}.");
        var gray = codec.Info.ColorType == SKColorType.Gray8;
        var info = new SKImageInfo(width, height, gray ? SKColorType.Gray8 : SKColorType.Rgba8888, gray ? SKAlphaType.Opaque : SKAlphaType.Unpremul);
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
            return info.RowBytes == width ? new DecodedImage(width, height, 1, decoded) : new DecodedImage(width, height, 1, Compact(decoded, width, height, info.RowBytes, 1, 1));
        }
        return new DecodedImage(width, height, 3, Compact(decoded, width, height, info.RowBytes, 4, 3));
    }

    /// <summary>Reads and decodes a file.</summary>
    /// <exception cref="InvalidDataException">The file is not a decodable image.</exception>
    public static DecodedImage DecodeFile(string path) => Decode(File.ReadAllBytes(path), path);

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
