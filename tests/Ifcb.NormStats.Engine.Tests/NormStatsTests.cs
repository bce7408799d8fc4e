using System.Diagnostics;
using Ifcb.Data.Bins;
using Ifcb.Data.Datasets;
using Ifcb.Data.Imaging;
using Xunit.Abstractions;

namespace Ifcb.NormStats.Engine.Tests;

public class NormStatsTests(ITestOutputHelper output)
{
    private static readonly string TrainingSample = FindTrainingSample();

    private static string FindTrainingSample()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "testdata", "training-sample");
            if (Directory.Exists(candidate))
                return candidate;
        }
        throw new DirectoryNotFoundException($"No testdata/training-sample above {AppContext.BaseDirectory}.");
    }

    private static IReadOnlyList<LabelledImage> Sample() => DatasetSpec.FromFolder(TrainingSample).Images;

    [Fact]
    public void ExactMatchesTwoPassComputation()
    {
        const int size = 64;
        var images = Sample();
        var values = new List<double>();
        foreach (var image in images)
        {
            var decoded = ImageDecoder.DecodeFile(image.Path);
            values.AddRange(PillowResize.Resize(decoded.Pixels, decoded.Width, decoded.Height, 1, size, size).Select(b => (double)(b / 255f)));
        }
        var mean = values.Sum() / values.Count;
        var std = Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / values.Count);

        var result = new NormStatsCalculator(size).ComputeExact(images);
        Assert.Equal(30, result.ImageCount);
        Assert.Equal(values.Count, result.PixelsPerChannel);
        for (var c = 0; c < 3; c++)
        {
            Assert.True(Math.Abs(result.Mean[c] - mean) <= 1e-6, $"mean {result.Mean[c]} vs {mean}");
            Assert.True(Math.Abs(result.Std[c] - std) <= 1e-6, $"std {result.Std[c]} vs {std}");
        }
    }

    [Fact]
    public void ShardsMergeToTheSameResultInAnyOrder()
    {
        var images = Sample();
        var calculator = new NormStatsCalculator(48);
        var whole = calculator.ComputePartial(images, 0, images.Count);
        var shards = new List<NormStatsPartial>();
        for (var start = 0; start < images.Count; start += 7)
            shards.Add(calculator.ComputePartial(images, start, Math.Min(7, images.Count - start)));
        var forward = shards.Aggregate((a, b) => a.Merge(b));
        var backward = Enumerable.Reverse(shards).Aggregate((a, b) => a.Merge(b));
        var tree = shards[0].Merge(shards[1]).Merge(shards[2].Merge(shards[3].Merge(shards[4])));
        foreach (var merged in new[] { forward, backward, tree })
        {
            Assert.Equal(whole.Moments.N, merged.Moments.N);
            Assert.Equal(30, merged.ImageCount);
            for (var c = 0; c < 3; c++)
            {
                Assert.True(Math.Abs(whole.Moments.Mean[c] - merged.Moments.Mean[c]) <= 1e-9);
                Assert.True(Math.Abs(whole.Moments.Std[c] - merged.Moments.Std[c]) <= 1e-9);
            }
        }
        Assert.Equal(whole.Moments, whole.Moments.Merge(ChannelMoments.Empty));
    }

    [Fact]
    public void ProgressIsReportedAndCorruptImagesAreExcluded()
    {
        var dir = Path.Combine(Path.GetTempPath(), "normstats-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var bad = Path.Combine(dir, "bad.png");
            File.WriteAllBytes(bad, [1, 2, 3]);
            var images = Sample().Take(4).Append(new LabelledImage(bad, 0)).ToList();
            var reports = new List<NormStatsProgress>();
            var partial = new NormStatsCalculator(32, workers: 1).ComputePartial(images, 0, images.Count, new SyncProgress(reports.Add));
            Assert.Equal(4, partial.ImageCount);
            Assert.Equal(bad, Assert.Single(partial.Failures).Path);
            Assert.Equal(5, reports.Count);
            Assert.Equal(new NormStatsProgress(5, 5, 1), reports[^1]);
            var clean = new NormStatsCalculator(32).ComputePartial(images, 0, 4);
            Assert.Equal(clean.Moments, partial.Moments);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void NeustonEstimatorAveragesBatchMeansAndBatchStds()
    {
        var dir = Path.Combine(Path.GetTempPath(), "normstats-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            // Five 4x4 images, batch size 2 → batches {0,1}, {2,3}, {4}: the last, partial batch weighs the same.
            var pixelsPerImage = new List<byte[]>();
            var images = new List<LabelledImage>();
            for (var i = 0; i < 5; i++)
            {
                var pixels = Enumerable.Range(0, 16).Select(p => (byte)((p * (i + 3) * 7 + i * 40) % 256)).ToArray();
                pixelsPerImage.Add(pixels);
                var path = Path.Combine(dir, $"img{i}.png");
                File.WriteAllBytes(path, RoiExporter.EncodePng(new GrayImage(4, 4, pixels)));
                images.Add(new LabelledImage(path, 0));
            }
            double[][] batches = [
                pixelsPerImage[0].Concat(pixelsPerImage[1]).Select(b => (double)(b / 255f)).ToArray(),
                pixelsPerImage[2].Concat(pixelsPerImage[3]).Select(b => (double)(b / 255f)).ToArray(),
                pixelsPerImage[4].Select(b => (double)(b / 255f)).ToArray()];
            var means = batches.Select(b => b.Average()).ToArray();
            var stds = batches.Select((b, i) => Math.Sqrt(b.Sum(v => (v - means[i]) * (v - means[i])) / b.Length)).ToArray();

            var result = new NormStatsCalculator(4).ComputeNeuston(images, batchSize: 2);
            Assert.Equal(NormStatsEstimator.Neuston, result.Estimator);
            for (var c = 0; c < 3; c++)
            {
                Assert.Equal(means.Average(), result.Mean[c], 12);
                Assert.Equal(stds.Average(), result.Std[c], 12);
            }
            // And it differs from the pooled estimator, as it should.
            var exact = new NormStatsCalculator(4).ComputeExact(images);
            Assert.NotEqual(exact.Std[0], result.Std[0], 6);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void MatchesNumpyCalcImgNormOnTheSampleAt299()
    {
        var images = Sample();
        // neuston CALC_IMG_NORM with PIL bilinear + numpy; the 30 images fit in one batch of 108. numpy's float32
        // reduction over (0,2,3) drifts by ~2.5e-3 on 2.7M values, so the reference accumulates in float64 (as we do)
        // and the float32 figures are only printed.
        const string script = """
import sys, numpy as np
from PIL import Image
x = np.stack([np.asarray(Image.open(p).convert('RGB').resize((299, 299), Image.BILINEAR), dtype=np.float32).transpose(2, 0, 1) / np.float32(255) for p in sys.argv[1:]])
print(repr(float(np.mean(x, axis=(0, 2, 3), dtype=np.float64)[0])), repr(float(np.std(x, axis=(0, 2, 3), dtype=np.float64)[0])),
      repr(float(np.mean(x, axis=(0, 2, 3))[0])), repr(float(np.std(x, axis=(0, 2, 3))[0])))
""";
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        foreach (var i in images)
            start.ArgumentList.Add(i.Path);
        using var process = Process.Start(start)!;
        var line = process.StandardOutput.ReadToEnd().Split(' ', StringSplitOptions.TrimEntries);
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
        var numpyMean = double.Parse(line[0], System.Globalization.CultureInfo.InvariantCulture);
        var numpyStd = double.Parse(line[1], System.Globalization.CultureInfo.InvariantCulture);

        var calculator = new NormStatsCalculator(299);
        var neuston = calculator.ComputeNeuston(images);
        var exact = calculator.ComputeExact(images);
        output.WriteLine($"numpy float64: mean {numpyMean} std {numpyStd}; numpy float32 (what neuston printed): mean {line[2]} std {line[3]}");
        output.WriteLine($"neuston: mean {neuston.Mean[0]:R} std {neuston.Std[0]:R} → --img-norm {neuston.ImgNorm.ToString()}");
        output.WriteLine($"exact:   mean {exact.Mean[0]:R} std {exact.Std[0]:R}");
        foreach (var r in new[] { neuston, exact })
        {
            Assert.Equal(0.65695, r.Mean[0], 2e-4);
            Assert.Equal(0.22312, r.Std[0], 2e-4);
            Assert.Equal(numpyMean, r.Mean[0], 1e-5);
            Assert.Equal(numpyStd, r.Std[0], 1e-5);
            Assert.Equal(r.Mean[0], r.Mean[2]);
        }
        Assert.StartsWith("0.65", neuston.ImgNorm.ToString());
        Assert.Equal(neuston.ImgNorm, Ifcb.Contracts.ImgNorm.Parse(neuston.ImgNorm.ToString()));
    }

    private sealed class SyncProgress(Action<NormStatsProgress> report) : IProgress<NormStatsProgress>
    {
        private readonly Lock _gate = new();

        public void Report(NormStatsProgress value)
        {
            lock (_gate)
                report(value);
        }
    }
}
