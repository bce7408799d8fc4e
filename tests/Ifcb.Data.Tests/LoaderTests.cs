using Ifcb.Data.Datasets;
using Ifcb.Data.Imaging;
using Ifcb.Data.Loading;
using Ifcb.Platform;
using TorchSharp;

namespace Ifcb.Data.Tests;

[Collection(Collection)]
public class LoaderTests
{
    /// <summary>Test classes that run a BatchLoader, one at a time: the cancellation test counts decode threads.</summary>
    public const string Collection = "batch loaders";

    private static IReadOnlyList<LabelledImage> Images() => DatasetSpec.FromFolder(TestData.TrainingSample).Images;

    private static List<(int[] Indices, float[] Pixels)> Run(LoaderOptions options, int epoch)
    {
        var loader = new BatchLoader(Images(), LocalFileImageSource.Instance, options);
        var result = new List<(int[], float[])>();
        foreach (var batch in loader.ReadEpoch(epoch))
        {
            using (batch)
                result.Add((batch.Indices.ToArray(), batch.Images.data<float>().ToArray()));
        }
        return result;
    }

    [Fact]
    public void BatchesHaveTheRightShapesLabelsAndOrder()
    {
        var images = Images();
        var loader = new BatchLoader(images, LocalFileImageSource.Instance, new LoaderOptions(new PreprocessOptions(32), BatchSize: 8, DecodeWorkers: 2));
        var seen = new List<int>();
        var sizes = new List<int>();
        using (torch.NewDisposeScope())
        {
            foreach (var batch in loader.ReadEpoch(0))
            {
                Assert.Equal([batch.Count, 3, 32, 32], batch.Images.shape);
                Assert.Equal(torch.ScalarType.Float32, batch.Images.dtype);
                Assert.Equal([batch.Count], batch.Labels.shape);
                Assert.Equal(torch.ScalarType.Int64, batch.Labels.dtype);
                Assert.Equal(batch.Indices.Select(i => (long)images[i].ClassIndex), batch.Labels.data<long>().ToArray());
                sizes.Add(batch.Count);
                seen.AddRange(batch.Indices);
            }
        }
        Assert.Equal([8, 8, 8, 6], sizes);
        Assert.Equal(Enumerable.Range(0, 30), seen);
        Assert.Equal(4, loader.BatchCount);

        // Same pixels as the preprocessor on its own.
        var single = new ImagePreprocessor(new PreprocessOptions(32)).Process(ImageDecoder.DecodeFile(images[9].Path));
        var run = Run(new LoaderOptions(new PreprocessOptions(32), BatchSize: 8), 0);
        Assert.Equal(single, run[1].Pixels.AsSpan(32 * 32 * 3, single.Length).ToArray());
    }

    [Fact]
    public void ShuffleAndFlipsAreDeterministicPerSeedAndEpochWhateverTheWorkerCount()
    {
        var options = new LoaderOptions(new PreprocessOptions(24, FlipOption.Parse("xy")), BatchSize: 7, Shuffle: true, Seed: 11, Training: true, DecodeWorkers: 1, PrefetchBatches: 1);
        var a = Run(options, 3);
        var b = Run(options with { DecodeWorkers = 4, PrefetchBatches = 3 }, 3);
        Assert.Equal(a.Select(x => x.Indices), b.Select(x => x.Indices));
        Assert.Equal(a.Select(x => x.Pixels), b.Select(x => x.Pixels));
        var order = a.SelectMany(x => x.Indices).ToList();
        Assert.Equal(Enumerable.Range(0, 30), order.Order());
        Assert.NotEqual(Enumerable.Range(0, 30), order);
        var otherEpoch = Run(options, 4).SelectMany(x => x.Indices);
        Assert.NotEqual(order, otherEpoch);

        // One loader, same epoch twice: the second pass reuses the first pass's (disposed) batch buffers.
        var loader = new BatchLoader(Images(), LocalFileImageSource.Instance, options);
        var first = loader.ReadEpoch(3).Select(batch => { using (batch) return batch.Images.data<float>().ToArray(); }).ToList();
        var second = loader.ReadEpoch(3).Select(batch => { using (batch) return batch.Images.data<float>().ToArray(); }).ToList();
        Assert.Equal(a.Select(x => x.Pixels), first);
        Assert.Equal(first, second);
    }

    [Fact]
    public void CorruptImagesAreSkippedAndReportedOrThrown()
    {
        var dir = TestData.TempDirectory();
        try
        {
            var bad = Path.Combine(dir, "bad.png");
            File.WriteAllBytes(bad, [0x89, 0x50, 0x4E, 0x47, 1, 2, 3]);
            var images = Images().Take(5).Append(new LabelledImage(bad, 1)).Append(new LabelledImage(Path.Combine(dir, "missing.png"), 0)).ToList();
            var loader = new BatchLoader(images, LocalFileImageSource.Instance, new LoaderOptions(new PreprocessOptions(16), BatchSize: 4));
            var batches = loader.ReadEpoch(0).ToList();
            Assert.Equal([4, 1], batches.Select(x => x.Count));
            Assert.Equal([bad, Path.Combine(dir, "missing.png")], batches[1].Failures.Select(f => f.Path));
            // The surviving image is moved to the front of its batch.
            Assert.Equal([4], batches[1].Indices);
            Assert.Equal([1, 3, 16, 16], batches[1].Images.shape);
            var expected = new ImagePreprocessor(new PreprocessOptions(16)).Process(ImageDecoder.DecodeFile(images[4].Path));
            Assert.Equal(expected, batches[1].ImageData(0).ToArray());
            Assert.Equal(expected, batches[1].Images.data<float>().ToArray());
            Assert.Equal(2, loader.Failures.Count);
            batches.ForEach(x => x.Dispose());

            var strict = new BatchLoader(images, LocalFileImageSource.Instance, new LoaderOptions(new PreprocessOptions(16), BatchSize: 4, CorruptImages: CorruptImagePolicy.Throw));
            var e = Assert.ThrowsAny<Exception>(() => strict.ReadEpoch(0).ToList());
            var inner = e is AggregateException ae ? ae.Flatten().InnerExceptions.First() : e;
            Assert.IsType<InvalidDataException>(inner);
            Assert.Contains(dir, inner.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public async Task CancellationStopsTheEpoch()
    {
        var loader = new BatchLoader(Images(), LocalFileImageSource.Instance, new LoaderOptions(new PreprocessOptions(16), BatchSize: 2));
        using var cts = new CancellationTokenSource();
        var count = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var batch in loader.ReadEpochAsync(0, cts.Token))
            {
                batch.Dispose();
                if (++count == 2)
                    await cts.CancelAsync();
            }
        });
        Assert.Equal(2, count);
        await AssertDecodeThreadsEndAsync();
        // Breaking out early is fine too and leaves nothing running.
        foreach (var batch in loader.ReadEpoch(1))
        {
            Assert.NotEmpty(DecodeThreads());
            batch.Dispose();
            break;
        }
        await AssertDecodeThreadsEndAsync();
    }

    [Fact]
    public void ABatchTooLargeForItsImageSizeIsRefusedBeforeAnythingIsAllocated()
    {
        // `ifcb train … --batch 28533` at 224 px: 28533 × 3 × 224² floats wrapped around int to a 48 K buffer, and the
        // decode threads then wrote past it and took the Training process down.
        var error = Assert.Throws<IfcbException>(() =>
            new BatchLoader(Images(), LocalFileImageSource.Instance, new LoaderOptions(new PreprocessOptions(224), BatchSize: 28533)));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("28533", error.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(Limits.MaxBatch), error.Message, StringComparison.Ordinal);

        // Within MaxBatch but over the tensor budget at this size: the message says what fits.
        var tooBig = Assert.Throws<IfcbException>(() =>
            new BatchLoader(Images(), LocalFileImageSource.Instance, new LoaderOptions(new PreprocessOptions(1024), BatchSize: 2048)));
        Assert.Contains(nameof(Limits.MaxBatchTensorBytes), tooBig.Message, StringComparison.Ordinal);
        Assert.Throws<IfcbException>(() => new LoaderOptions(new PreprocessOptions(8), BatchSize: 4).Validate());
    }

    [Fact]
    public async Task AnUnexpectedErrorOnADecodeThreadFailsTheEpochWithAClearErrorAndLeavesNoThread()
    {
        var images = Images();
        var poisoned = images[13].Path; // in the second batch, so the consumer is waiting on the first when it fails
        var source = new ThrowingImageSource(poisoned, () => new InvalidCastException("a bug in an image source"));
        var loader = new BatchLoader(images, source, new LoaderOptions(new PreprocessOptions(16), BatchSize: 8, DecodeWorkers: 3));
        var consumed = 0;
        var error = await Assert.ThrowsAsync<InvalidOperationException>(async () =>
        {
            await foreach (var batch in loader.ReadEpochAsync(0))
            {
                batch.Dispose();
                consumed++;
            }
        });
        Assert.Equal(1, consumed);
        Assert.Contains(poisoned, error.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(InvalidCastException), error.Message, StringComparison.Ordinal);
        Assert.IsType<InvalidCastException>(error.InnerException);
        Assert.Empty(loader.Failures); // not taken for a corrupt image: nothing was silently left out
        await AssertDecodeThreadsEndAsync();

        // The synchronous form throws the same error, and the loader stays usable once the source is healthy again.
        Assert.Throws<InvalidOperationException>(() => loader.ReadEpoch(1).ToList());
        await AssertDecodeThreadsEndAsync();
        source.Healthy = true;
        Assert.Equal(30, loader.ReadEpoch(2).Sum(batch => { using (batch) return batch.Count; }));
    }

    [Fact]
    public async Task AStorageOutageOnADecodeThreadFailsTheEpochAsTransientInsteadOfSkippingImages()
    {
        var images = Images();
        var source = new ThrowingImageSource(images[2].Path, () => new Azure.RequestFailedException(503, "The server is busy."));
        var loader = new BatchLoader(images, source, new LoaderOptions(new PreprocessOptions(16), BatchSize: 8, DecodeWorkers: 2));
        var error = await Assert.ThrowsAsync<InvalidOperationException>(async () =>
        {
            await foreach (var batch in loader.ReadEpochAsync(0))
                batch.Dispose();
        });
        Assert.True(Faults.IsTransient(error), Faults.Reason(error));
        Assert.Empty(loader.Failures);
        await AssertDecodeThreadsEndAsync();
    }

    /// <summary>Decodes from disk, except one path, which throws whatever <paramref name="error"/> makes until <see cref="Healthy"/>.</summary>
    private sealed class ThrowingImageSource(string path, Func<Exception> error) : IImageSource
    {
        public volatile bool Healthy;

        public DecodedImage Load(string imagePath) =>
            !Healthy && imagePath == path ? throw error() : LocalFileImageSource.Instance.Load(imagePath);
    }

    // The loader joins its threads before the epoch's enumerator finishes, but a joined .NET thread leaves the kernel's
    // task list a moment later (it signals completion before the OS thread exits). A leaked thread never goes: it would
    // block on the work queue forever.
    private static async Task AssertDecodeThreadsEndAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DecodeThreads().Count > 0 && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        Assert.Empty(DecodeThreads());
    }

    // The loader's dedicated decode threads, by their OS thread names (Linux: /proc/self/task/*/comm).
    private static List<string> DecodeThreads() =>
        Directory.GetDirectories("/proc/self/task")
            .Select(task => { try { return File.ReadAllText(Path.Combine(task, "comm")).Trim(); } catch (IOException) { return ""; } })
            .Where(name => name.StartsWith("ifcb-decode", StringComparison.Ordinal))
            .ToList();
}
