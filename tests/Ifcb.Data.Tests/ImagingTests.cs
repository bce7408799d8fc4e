using Ifcb.Contracts;
using Ifcb.Data.Datasets;
using Ifcb.Data.Imaging;
using Xunit.Abstractions;

namespace Ifcb.Data.Tests;

public class ImagingTests(ITestOutputHelper output)
{
    private static IReadOnlyList<string> SamplePngs() => DatasetSpec.FromFolder(TestData.TrainingSample).Images.Select(i => i.Path).ToList();

    [Theory]
    [InlineData(224)]
    [InlineData(299)]
    public async Task ResizeMatchesPillowBilinear(int size)
    {
        var files = SamplePngs();
        const string script = """
import sys
from PIL import Image
size = int(sys.argv[1])
out = sys.stdout.buffer
for p in sys.argv[2:]:
    out.write(Image.open(p).convert('RGB').resize((size, size), Image.BILINEAR).tobytes())
""";
        var start = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(size.ToString(System.Globalization.CultureInfo.InvariantCulture));
        foreach (var f in files)
            start.ArgumentList.Add(f);
        using var process = System.Diagnostics.Process.Start(start)!;
        using var buffer = new MemoryStream();
        var err = process.StandardError.ReadToEndAsync();
        await process.StandardOutput.BaseStream.CopyToAsync(buffer);
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, await err);
        var pillow = buffer.ToArray();
        var plane = size * size;
        Assert.Equal(files.Count * plane * 3, pillow.Length);

        var preprocessor = new ImagePreprocessor(new PreprocessOptions(size));
        var maxDiff = 0;
        long sumDiff = 0;
        long differing = 0;
        for (var f = 0; f < files.Count; f++)
        {
            var image = ImageDecoder.DecodeFile(files[f]);
            Assert.Equal(1, image.Channels);
            var tensor = preprocessor.Process(image);
            for (var c = 0; c < 3; c++)
            {
                for (var i = 0; i < plane; i++)
                {
                    var expected = pillow[(f * plane * 3) + (i * 3) + c];
                    var ours = (int)MathF.Round(tensor[(c * plane) + i] * 255f);
                    Assert.Equal(expected / 255f, tensor[(c * plane) + i], 6);
                    var d = Math.Abs(ours - expected);
                    maxDiff = Math.Max(maxDiff, d);
                    sumDiff += d;
                    differing += d > 0 ? 1 : 0;
                }
            }
        }
        output.WriteLine($"S={size}: max |diff| = {maxDiff}/255, mean |diff| = {(double)sumDiff / (files.Count * plane * 3):E3}/255, differing values = {differing}");
        Assert.True(maxDiff <= 1, $"max diff {maxDiff}/255");
    }

    [Fact]
    public void FlipsAreAppliedBeforeResizeAndOnlyWhenAsked()
    {
        byte[] pixels = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        var both = new ImagePreprocessor(new PreprocessOptions(3, FlipOption.Parse("xy")));
        // Validation without +V is never flipped (and needs no Random); same size means no resampling.
        Assert.Equal([.. pixels.Concat(pixels).Concat(pixels).Select(b => b / 255f)], both.Process(new DecodedImage(3, 3, 1, pixels), training: false));

        var vertical = new ImagePreprocessor(new PreprocessOptions(2, new FlipOption(FlipMode.Vertical, false)));
        var outcomes = new HashSet<string>();
        var random = new Random(3);
        for (var i = 0; i < 40; i++)
            outcomes.Add(string.Join(',', vertical.Process(new DecodedImage(2, 2, 1, [10, 20, 30, 40]), true, random)[..4].Select(v => (int)MathF.Round(v * 255))));
        Assert.Equal(["10,20,30,40", "30,40,10,20"], outcomes.Order(StringComparer.Ordinal));

        var horizontalValidation = new ImagePreprocessor(new PreprocessOptions(2, FlipOption.Parse("y+V")));
        var seen = new HashSet<string>();
        for (var i = 0; i < 40; i++)
            seen.Add(string.Join(',', horizontalValidation.Process(new DecodedImage(2, 2, 1, [10, 20, 30, 40]), false, random)[..4].Select(v => (int)MathF.Round(v * 255))));
        Assert.Equal(["10,20,30,40", "20,10,40,30"], seen.Order(StringComparer.Ordinal));

        Assert.Throws<ArgumentException>(() => FlipOption.Parse("z"));
        Assert.Equal("xy+V", FlipOption.Parse("xy+V").ToString());
    }

    [Fact]
    public void NormalisationIsApplied()
    {
        var norm = ImgNorm.Parse("0.5 0.25");
        var plain = new ImagePreprocessor(new PreprocessOptions(4)).Process(new DecodedImage(4, 4, 1, Enumerable.Range(0, 16).Select(i => (byte)(i * 16)).ToArray()));
        var normed = new ImagePreprocessor(new PreprocessOptions(4, Norm: norm)).Process(new DecodedImage(4, 4, 1, Enumerable.Range(0, 16).Select(i => (byte)(i * 16)).ToArray()));
        for (var i = 0; i < plain.Length; i++)
            Assert.Equal((plain[i] - 0.5f) / 0.25f, normed[i], 6);
        using var t = TorchSharp.torch.tensor(plain, [1, 3, 4, 4]);
        using var applied = norm.Apply(t);
        Assert.Equal(normed, applied.data<float>().ToArray());
    }

    [Fact]
    public void RgbImagesKeepTheirChannels()
    {
        using var bitmap = new SkiaSharp.SKBitmap(new SkiaSharp.SKImageInfo(2, 1, SkiaSharp.SKColorType.Rgba8888, SkiaSharp.SKAlphaType.Unpremul));
        bitmap.SetPixel(0, 0, new SkiaSharp.SKColor(255, 0, 0));
        bitmap.SetPixel(1, 0, new SkiaSharp.SKColor(0, 128, 255));
        using var png = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
        var decoded = ImageDecoder.Decode(png.ToArray(), "rgb.png");
        Assert.Equal(3, decoded.Channels);
        Assert.Equal([255, 0, 0, 0, 128, 255], decoded.Pixels);
    }

    [Fact]
    public void CorruptImagesRaiseInvalidDataWithTheFileName()
    {
        Assert.Contains("bad.png", Assert.Throws<InvalidDataException>(() => ImageDecoder.Decode([1, 2, 3, 4], "bad.png")).Message);
        Assert.Contains("0 bytes", Assert.Throws<InvalidDataException>(() => ImageDecoder.Decode([], "empty.png")).Message);
        var png = File.ReadAllBytes(SamplePngs()[0]);
        Assert.Contains("cut.png", Assert.Throws<InvalidDataException>(() => ImageDecoder.Decode(png.AsSpan(0, png.Length / 2), "cut.png")).Message);
    }

    [Fact]
    public void AHeaderDeclaringTooManyPixelsIsRefusedBeforeThePixelsAreAllocated()
    {
        // 40000×40000 RGBA would be 6.4 GB decoded; the file is under 100 bytes.
        var png = CraftedPng.Header(40_000, 40_000);
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<InvalidDataException>(() => ImageDecoder.Decode(png, "huge.png"));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        Assert.Contains("huge.png", error.Message, StringComparison.Ordinal);
        Assert.Contains("40000×40000", error.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(Ifcb.Platform.Limits.MaxImagePixels), error.Message, StringComparison.Ordinal);
        Assert.True(allocated < 1 << 20, $"refusing the header allocated {allocated} bytes");

        // At the limit it is a normal (here truncated, hence corrupt) image, not refused for its size.
        var atLimit = Assert.Throws<InvalidDataException>(() => ImageDecoder.Decode(CraftedPng.Header(4096, 4096), "edge.png"));
        Assert.DoesNotContain(nameof(Ifcb.Platform.Limits.MaxImagePixels), atLimit.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnOversizedImageInATrainingSetIsSkippedAndReportedLikeACorruptOne()
    {
        var dir = TestData.TempDirectory();
        try
        {
            var huge = Path.Combine(dir, "huge.png");
            File.WriteAllBytes(huge, CraftedPng.Header(40_000, 40_000));
            var images = DatasetSpec.FromFolder(TestData.TrainingSample).Images.Take(3).Append(new LabelledImage(huge, 0)).ToList();
            var loader = new Loading.BatchLoader(images, Loading.LocalFileImageSource.Instance, new Loading.LoaderOptions(new PreprocessOptions(16), BatchSize: 4));
            var batch = Assert.Single(loader.ReadEpoch(0));
            using (batch)
                Assert.Equal(3, batch.Count);
            var failure = Assert.Single(loader.Failures);
            Assert.Equal(huge, failure.Path);
            Assert.Contains(nameof(Ifcb.Platform.Limits.MaxImagePixels), failure.Reason, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}

/// <summary>
/// PNG files built byte by byte: a signature, a valid IHDR (correct CRC) declaring any size, the start of the image
/// data (one IDAT with a few compressed rows, so decoders get past the header) and IEND.
/// </summary>
internal static class CraftedPng
{
    public static byte[] Header(int width, int height, byte colorType = 6)
    {
        using var png = new MemoryStream();
        png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; // bit depth
        ihdr[9] = colorType; // 6 = RGBA
        Chunk(png, "IHDR", ihdr);
        using (var rows = new MemoryStream())
        {
            using (var zlib = new System.IO.Compression.ZLibStream(rows, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true))
                zlib.Write(new byte[1024]);
            Chunk(png, "IDAT", rows.ToArray());
        }
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void Chunk(Stream png, string type, byte[] data)
    {
        Span<byte> word = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        png.Write(word);
        var typed = System.Text.Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        png.Write(typed);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(word, Crc32(typed));
        png.Write(word);
    }

    // The PNG specification's CRC-32 (ISO 3309, reflected polynomial 0xEDB88320), bit by bit: a few bytes only.
    private static uint Crc32(byte[] bytes)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in bytes)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++)
                crc = (crc & 1) != 0 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
        }
        return crc ^ 0xFFFFFFFFu;
    }
}
