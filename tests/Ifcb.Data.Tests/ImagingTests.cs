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
}
