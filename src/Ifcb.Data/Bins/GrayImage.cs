namespace Ifcb.Data.Bins;

/// <summary>An 8-bit grayscale image, row-major: <c>Pixels[y * Width + x]</c>, <c>Height</c> rows of <c>Width</c> bytes.</summary>
public sealed record GrayImage
{
    public int Width { get; }
    public int Height { get; }
    public byte[] Pixels { get; }

    public GrayImage(int width, int height, byte[] pixels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        if (pixels.Length != (long)width * height)
            throw new ArgumentException($"A {width}x{height} image needs {(long)width * height} pixels, got {pixels.Length}.",
                nameof(pixels));
        Width = width;
        Height = height;
        Pixels = pixels;
    }

    public byte this[int y, int x] => Pixels[(y * Width) + x];

    public ReadOnlySpan<byte> Row(int y) => Pixels.AsSpan(y * Width, Width);
}

/// <summary>One image of a bin: its 1-based target number (ADC row) and pixels.</summary>
public sealed record RoiImage(BinId Bin, int TargetNumber, GrayImage Image)
{
    /// <summary><c>{lid}_{target:00000}</c>, the name neuston and the dashboard use.</summary>
    public string RoiId => Bin.RoiId(TargetNumber);
}
