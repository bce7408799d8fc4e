namespace Ifcb.Data.Imaging;

/// <summary>
/// 8-bit pixels, row-major and channel-interleaved (HWC). <see cref="Channels"/> is 1 for grayscale sources and 3 for
/// everything else, which is what PIL's <c>convert('RGB')</c> sees: a gray image becomes R=G=B, so it is kept as one
/// channel here and replicated only when the tensor is written (same numbers, a third of the resize work).
/// </summary>
public sealed record DecodedImage
{
    public int Width { get; }
    public int Height { get; }
    public int Channels { get; }
    public byte[] Pixels { get; }

    public DecodedImage(int width, int height, int channels, byte[] pixels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        if (channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "Channels must be 1 (gray) or 3 (RGB).");
        if (pixels.Length != (long)width * height * channels)
            throw new ArgumentException($"A {width}x{height}x{channels} image needs {(long)width * height * channels} bytes, " +
                $"got {pixels.Length}.", nameof(pixels));
        Width = width;
        Height = height;
        Channels = channels;
        Pixels = pixels;
    }

    public static DecodedImage FromGray(Bins.GrayImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        return new DecodedImage(image.Width, image.Height, 1, image.Pixels);
    }
}
