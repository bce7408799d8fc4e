using System.Globalization;
using Ifcb.Data.Bins;
using Ifcb.Data.Datasets;
using Ifcb.Data.Imaging;
using Ifcb.Testing;

/// <summary>
/// A deterministic synthetic class-folder dataset made from the repository's sample PNGs: each image is a sample turned
/// by a multiple of 90 degrees, flipped, rescaled (0.6-1.4x, optionally capped to a longest side) and given pixel noise,
/// written as an 8-bit grayscale PNG like the samples. Image i depends only on the seed and i, so a set is the same
/// whatever the thread count; a finished set is kept (with a marker file) and reused by later runs.
/// </summary>
internal sealed record SyntheticSet(string Folder, int Images, long Bytes)
{
    public const int Classes = 40;
    private const string Marker = "complete.txt";

    public double Megabytes => Bytes / 1e6;

    /// <summary>The set's files, class folder by class folder.</summary>
    public IReadOnlyList<string> Files() =>
        [.. DatasetSpec.ListClassFolders(Folder).SelectMany(c => c.Value)];

    /// <summary>The set under <paramref name="work"/>, generated unless a finished one is there.</summary>
    public static SyntheticSet Ensure(string work, string kind, int images, int? maxSide, int seed, CancellationToken cancellationToken)
    {
        var folder = Path.Combine(work, $"{kind}-{images}-seed{seed}");
        var marker = Path.Combine(folder, Marker);
        if (!File.Exists(marker))
        {
            if (Directory.Exists(folder))
                Directory.Delete(folder, recursive: true);
            Generate(folder, images, maxSide, seed, cancellationToken);
            File.WriteAllText(marker, images.ToString(CultureInfo.InvariantCulture));
        }
        var bytes = DatasetSpec.ListClassFolders(folder).SelectMany(c => c.Value).Sum(f => new FileInfo(f).Length);
        return new SyntheticSet(folder, images, bytes);
    }

    private static void Generate(string folder, int images, int? maxSide, int seed, CancellationToken cancellationToken)
    {
        var samples = DatasetSpec.ListClassFolders(Path.Combine(RepoPaths.Root, "testdata", "training-sample"))
            .SelectMany(c => c.Value).Order(StringComparer.Ordinal).Select(ImageDecoder.DecodeFile).ToArray();
        if (samples.Length == 0 || samples.Any(s => s.Channels != 1))
            throw new InvalidOperationException("testdata/training-sample must hold grayscale PNGs.");
        for (var c = 0; c < Classes; c++)
            Directory.CreateDirectory(Path.Combine(folder, ClassName(c)));
        Parallel.For(0, images, new ParallelOptions { CancellationToken = cancellationToken }, i =>
        {
            // Not HashCode.Combine: it is randomised per process.
            var random = new Random(unchecked((seed * 1_000_003) + i));
            var image = Transform(samples[random.Next(samples.Length)], random, maxSide);
            File.WriteAllBytes(Path.Combine(folder, ClassName(i % Classes), $"syn_{i:D7}.png"), RoiExporter.EncodePng(image));
        });
    }

    private static string ClassName(int c) => $"class_{c:D2}";

    private static GrayImage Transform(DecodedImage sample, Random random, int? maxSide)
    {
        var (width, height, pixels) = Rotate(sample.Width, sample.Height, sample.Pixels, random.Next(4),
            random.Next(2) == 1, random.Next(2) == 1);
        var scale = 0.6 + (0.8 * random.NextDouble());
        if (maxSide is { } side)
            scale = Math.Min(scale, (double)side / Math.Max(width, height));
        var newWidth = Math.Max(1, (int)Math.Round(width * scale));
        var newHeight = Math.Max(1, (int)Math.Round(height * scale));
        var resized = Resize(width, height, pixels, newWidth, newHeight);
        for (var p = 0; p < resized.Length; p++)
        {
            // Roughly Gaussian noise (sum of three uniforms), sigma about 4 grey levels.
            var noise = (random.NextDouble() + random.NextDouble() + random.NextDouble() - 1.5) * 8;
            resized[p] = (byte)Math.Clamp((int)Math.Round(resized[p] + noise), 0, 255);
        }
        return new GrayImage(newWidth, newHeight, resized);
    }

    /// <summary>Turns by <paramref name="quarterTurns"/> x 90 degrees clockwise, then flips.</summary>
    private static (int Width, int Height, byte[] Pixels) Rotate(int w, int h, byte[] src, int quarterTurns, bool flipX, bool flipY)
    {
        var (width, height) = quarterTurns % 2 == 0 ? (w, h) : (h, w);
        var dst = new byte[width * height];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var dx = flipX ? width - 1 - x : x;
                var dy = flipY ? height - 1 - y : y;
                var (sx, sy) = quarterTurns switch
                {
                    0 => (dx, dy),
                    1 => (dy, h - 1 - dx),
                    2 => (w - 1 - dx, h - 1 - dy),
                    _ => (w - 1 - dy, dx),
                };
                dst[(y * width) + x] = src[(sy * w) + sx];
            }
        }
        return (width, height, dst);
    }

    /// <summary>Bilinear resampling with pixel centres aligned.</summary>
    private static byte[] Resize(int w, int h, byte[] src, int newWidth, int newHeight)
    {
        var dst = new byte[newWidth * newHeight];
        for (var y = 0; y < newHeight; y++)
        {
            var fy = Math.Clamp(((y + 0.5) * h / newHeight) - 0.5, 0, h - 1);
            var y0 = (int)fy;
            var y1 = Math.Min(y0 + 1, h - 1);
            var ty = fy - y0;
            for (var x = 0; x < newWidth; x++)
            {
                var fx = Math.Clamp(((x + 0.5) * w / newWidth) - 0.5, 0, w - 1);
                var x0 = (int)fx;
                var x1 = Math.Min(x0 + 1, w - 1);
                var tx = fx - x0;
                var top = (src[(y0 * w) + x0] * (1 - tx)) + (src[(y0 * w) + x1] * tx);
                var bottom = (src[(y1 * w) + x0] * (1 - tx)) + (src[(y1 * w) + x1] * tx);
                dst[(y * newWidth) + x] = (byte)Math.Clamp((int)Math.Round((top * (1 - ty)) + (bottom * ty)), 0, 255);
            }
        }
        return dst;
    }
}
