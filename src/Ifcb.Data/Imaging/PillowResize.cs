using System.Buffers;

namespace Ifcb.Data.Imaging;

/// <summary>
/// Pillow's <c>Image.resize(size, BILINEAR)</c> for 8-bit images, reimplemented: a separable convolution with a
/// triangle filter whose support is widened by the scale factor when downscaling (so it antialiases), horizontal pass
/// first, then vertical, each rounding to uint8 with Pillow's 22-bit fixed-point coefficients. This is what
/// torchvision's <c>Resize</c> did on PIL images for neuston, so tensors match the reference to the last bit or two.
/// </summary>
public static class PillowResize
{
    private const int PrecisionBits = 32 - 8 - 2;

    /// <summary>
    /// Resizes interleaved 8-bit pixels (<paramref name="channels"/> per pixel) to <paramref name="outWidth"/> x
    /// <paramref name="outHeight"/>.
    /// </summary>
    public static byte[] Resize(ReadOnlySpan<byte> pixels, int width, int height, int channels, int outWidth, int outHeight)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outWidth);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outHeight);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(channels);
        var result = new byte[outWidth * outHeight * channels];
        Resize(pixels, width, height, channels, result, outWidth, outHeight);
        return result;
    }

    /// <summary>
    /// Resizes into <paramref name="destination"/> (length outWidth*outHeight*channels), allocating only pooled scratch
    /// memory.
    /// </summary>
    public static void Resize(ReadOnlySpan<byte> pixels, int width, int height, int channels, Span<byte> destination,
        int outWidth, int outHeight)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(channels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outWidth);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outHeight);
        if (pixels.Length != width * height * channels)
            throw new ArgumentException($"Expected {width * height * channels} bytes for {width}x{height}x{channels}, got {pixels.Length}.",
                nameof(pixels));
        if (destination.Length != outWidth * outHeight * channels)
            throw new ArgumentException($"Destination must hold {outWidth * outHeight * channels} bytes, has {destination.Length}.",
                nameof(destination));

        var horizontal = outWidth != width;
        var vertical = outHeight != height;
        if (!horizontal && !vertical)
        {
            pixels.CopyTo(destination);
            return;
        }
        if (!vertical)
        {
            var (b, w, k) = Coefficients(width, outWidth);
            ResampleHorizontal(pixels, width, height, channels, destination, outWidth, b, w, k);
            return;
        }
        var (vBounds, vWeights, vKernel) = Coefficients(height, outHeight);
        if (!horizontal)
        {
            ResampleVertical(pixels, width, channels, destination, outHeight, vBounds, vWeights, vKernel);
            return;
        }
        var (hBounds, hWeights, hKernel) = Coefficients(width, outWidth);
        var scratchLength = outWidth * height * channels;
        var scratch = ArrayPool<byte>.Shared.Rent(scratchLength);
        try
        {
            ResampleHorizontal(pixels, width, height, channels, scratch.AsSpan(0, scratchLength), outWidth, hBounds, hWeights, hKernel);
            ResampleVertical(scratch.AsSpan(0, scratchLength), outWidth, channels, destination, outHeight, vBounds, vWeights, vKernel);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    private static double Triangle(double x)
    {
        x = Math.Abs(x);
        return x < 1.0 ? 1.0 - x : 0.0;
    }

    // Pillow precompute_coeffs + normalize_coeffs_8bpc (box = whole image).
    private static (int[] Bounds, int[] Weights, int KernelSize) Coefficients(int inSize, int outSize)
    {
        var scale = (double)inSize / outSize;
        var filterScale = Math.Max(scale, 1.0);
        var support = 1.0 * filterScale;
        var kernelSize = (int)Math.Ceiling(support) * 2 + 1;
        var bounds = new int[outSize * 2];
        var weights = new int[outSize * kernelSize];
        var kernel = new double[kernelSize];
        var inverseScale = 1.0 / filterScale;
        for (var xx = 0; xx < outSize; xx++)
        {
            var center = (xx + 0.5) * scale;
            var xmin = (int)(center - support + 0.5);
            if (xmin < 0)
                xmin = 0;
            var xmax = (int)(center + support + 0.5);
            if (xmax > inSize)
                xmax = inSize;
            xmax -= xmin;
            var total = 0.0;
            for (var x = 0; x < xmax; x++)
            {
                var w = Triangle((x + xmin - center + 0.5) * inverseScale);
                kernel[x] = w;
                total += w;
            }
            for (var x = 0; x < kernelSize; x++)
            {
                var k = x < xmax && total != 0.0 ? kernel[x] / total : 0.0;
                weights[(xx * kernelSize) + x] = k < 0
                    ? (int)(-0.5 + (k * (1 << PrecisionBits)))
                    : (int)(0.5 + (k * (1 << PrecisionBits)));
            }
            bounds[xx * 2] = xmin;
            bounds[(xx * 2) + 1] = xmax;
        }
        return (bounds, weights, kernelSize);
    }

    private static byte Clip8(int value)
    {
        if (value >= 1 << PrecisionBits << 8)
            return 255;
        if (value <= 0)
            return 0;
        return (byte)(value >> PrecisionBits);
    }

    private static void ResampleHorizontal(ReadOnlySpan<byte> src, int width, int height, int channels, Span<byte> dst, int outWidth,
        int[] bounds, int[] weights, int kernelSize)
    {
        const int half = 1 << (PrecisionBits - 1);
        for (var y = 0; y < height; y++)
        {
            var srcRow = y * width * channels;
            var dstRow = y * outWidth * channels;
            for (var xx = 0; xx < outWidth; xx++)
            {
                var xmin = bounds[xx * 2];
                var xmax = bounds[(xx * 2) + 1];
                var k = xx * kernelSize;
                for (var c = 0; c < channels; c++)
                {
                    var sum = half;
                    var s = srcRow + (xmin * channels) + c;
                    for (var x = 0; x < xmax; x++)
                        sum += src[s + (x * channels)] * weights[k + x];
                    dst[dstRow + (xx * channels) + c] = Clip8(sum);
                }
            }
        }
    }

    private static void ResampleVertical(ReadOnlySpan<byte> src, int width, int channels, Span<byte> dst, int outHeight, int[] bounds,
        int[] weights, int kernelSize)
    {
        const int half = 1 << (PrecisionBits - 1);
        var rowLength = width * channels;
        var sumsArray = ArrayPool<int>.Shared.Rent(rowLength);
        var sums = sumsArray.AsSpan(0, rowLength);
        for (var yy = 0; yy < outHeight; yy++)
        {
            var ymin = bounds[yy * 2];
            var ymax = bounds[(yy * 2) + 1];
            var k = yy * kernelSize;
            sums.Fill(half);
            // Row-at-a-time accumulation keeps memory access sequential; integer sums are order-independent, so the result equals Pillow's.
            for (var y = 0; y < ymax; y++)
            {
                var weight = weights[k + y];
                var row = src.Slice((ymin + y) * rowLength, rowLength);
                for (var i = 0; i < rowLength; i++)
                    sums[i] += row[i] * weight;
            }
            var outRow = dst.Slice(yy * rowLength, rowLength);
            for (var i = 0; i < rowLength; i++)
                outRow[i] = Clip8(sums[i]);
        }
        ArrayPool<int>.Shared.Return(sumsArray);
    }
}
