using System.Buffers;
using Ifcb.Contracts;

namespace Ifcb.Data.Imaging;

/// <summary>Preprocessing options: output size S (224, or 299 for inception_v3), flips, optional normalisation.</summary>
public sealed record PreprocessOptions(int Size, FlipOption? Flip = null, ImgNorm? Norm = null)
{
    public FlipOption Flips => Flip ?? FlipOption.None;

    /// <summary>Floats per image in the output: 3 * S * S.</summary>
    public int TensorLength => 3 * Size * Size;
}

/// <summary>
/// neuston's train/val transform: (optional flips) → Resize([S,S]) with Pillow bilinear → ToTensor (CHW float32 /255)
/// → optional Normalize. Gray sources become three identical channels.
/// </summary>
public sealed class ImagePreprocessor
{
    public ImagePreprocessor(PreprocessOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.Size);
        Options = options;
    }

    public PreprocessOptions Options { get; }

    /// <summary>
    /// Writes the CHW float image into <paramref name="destination"/> (length 3*S*S). Flips are drawn from
    /// <paramref name="random"/> when <paramref name="training"/> (or the option applies them to validation too).
    /// </summary>
    public void Process(DecodedImage image, bool training, Random? random, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(image);
        var size = Options.Size;
        if (destination.Length != Options.TensorLength)
            throw new ArgumentException($"Destination holds {destination.Length} floats; " +
                $"a 3x{size}x{size} image needs {Options.TensorLength}.", nameof(destination));
        var pixels = image.Pixels;
        var flips = Options.Flips;
        if (flips.Mode != FlipMode.None && (training || flips.ApplyToValidation))
        {
            if (random is null)
                throw new ArgumentNullException(nameof(random), "Flips are enabled, so a Random is needed to draw them.");
            // Same draw order as torchvision's Compose: the vertical flip's coin first, then the horizontal one.
            var vertical = flips.Mode is FlipMode.Vertical or FlipMode.Both && random.NextDouble() < 0.5;
            var horizontal = flips.Mode is FlipMode.Horizontal or FlipMode.Both && random.NextDouble() < 0.5;
            if (vertical || horizontal)
                pixels = Flip(image, vertical, horizontal);
        }
        var resizedLength = size * size * image.Channels;
        var resized = ArrayPool<byte>.Shared.Rent(resizedLength);
        try
        {
            PillowResize.Resize(pixels, image.Width, image.Height, image.Channels, resized.AsSpan(0, resizedLength), size, size);
            WriteChw(resized, image.Channels, size * size, destination);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(resized);
        }
        Options.Norm?.ApplyInPlace(destination);
    }

    /// <summary>Convenience: a fresh float[3*S*S] for one image.</summary>
    public float[] Process(DecodedImage image, bool training = false, Random? random = null)
    {
        var result = new float[Options.TensorLength];
        Process(image, training, random, result);
        return result;
    }

    private static void WriteChw(byte[] resized, int channels, int plane, Span<float> destination)
    {
        if (channels == 1)
        {
            var first = destination[..plane];
            for (var i = 0; i < plane; i++)
                first[i] = resized[i] / 255f;
            first.CopyTo(destination.Slice(plane, plane));
            first.CopyTo(destination.Slice(2 * plane, plane));
            return;
        }
        for (var c = 0; c < 3; c++)
        {
            var channel = destination.Slice(c * plane, plane);
            for (var i = 0; i < plane; i++)
                channel[i] = resized[(i * 3) + c] / 255f;
        }
    }

    private static byte[] Flip(DecodedImage image, bool vertical, bool horizontal)
    {
        var w = image.Width;
        var h = image.Height;
        var ch = image.Channels;
        var src = image.Pixels;
        var dst = new byte[src.Length];
        for (var y = 0; y < h; y++)
        {
            var sy = vertical ? h - 1 - y : y;
            for (var x = 0; x < w; x++)
            {
                var sx = horizontal ? w - 1 - x : x;
                for (var c = 0; c < ch; c++)
                    dst[(((y * w) + x) * ch) + c] = src[(((sy * w) + sx) * ch) + c];
            }
        }
        return dst;
    }
}
