using Ifcb.Data.Datasets;
using Ifcb.Data.Datasets.Shards;
using Ifcb.Data.Imaging;
using Ifcb.Data.Loading;

namespace Ifcb.Data.Tests;

// Shares a collection with LoaderTests, which counts the loader's decode threads.
[Collection(LoaderTests.Collection)]
public class BlobDatasetStoreTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    [Fact]
    public async Task UploadDescribeListOpenAndDelete()
    {
        var container = azurite.NewContainer();
        var store = new BlobDatasetStore(container);
        Assert.Empty(await store.ListAsync());

        var first = await store.UploadFromFolderAsync("sample", TestData.TrainingSample, parallelism: 4);
        Assert.Equal((30, 0, 1), (first.Uploaded, first.AlreadyPresent, first.ShardsUploaded));
        Assert.Equal(["Mesodinium_major", "Strombidium-like"], first.Dataset.CountPerClass.Keys.Order(StringComparer.Ordinal));
        Assert.Matches("^[0-9a-f]{64}$", first.Dataset.Fingerprint);
        Assert.Equal(1, first.Dataset.Shards);

        // Resumable: a second upload finds its shard stored and sends nothing.
        var again = await store.UploadFromFolderAsync("sample", TestData.TrainingSample, parallelism: 1);
        Assert.Equal((0, 30, 0, 1), (again.Uploaded, again.AlreadyPresent, again.ShardsUploaded, again.ShardsPresent));
        Assert.Equal(first.Dataset.Fingerprint, again.Dataset.Fingerprint);

        var description = await store.DescribeAsync("sample");
        Assert.Equal(14, description.CountPerClass["Mesodinium_major"]);
        Assert.Equal(16, description.CountPerClass["Strombidium-like"]);
        Assert.Equal(30, description.FileCount);
        Assert.Equal(first.Dataset.Fingerprint, description.Fingerprint);
        Assert.Equal(DatasetSpec.FromFolder(TestData.TrainingSample).Images.Sum(i => new FileInfo(i.Path).Length), description.TotalBytes);

        await store.UploadFromFolderAsync("copy", TestData.TrainingSample, parallelism: 2);
        Assert.Equal(["copy", "sample"], await store.ListAsync());

        var cacheRoot = TestData.TempDirectory();
        try
        {
            using var cache = new ShardCache(cacheRoot, 1L << 30);
            using (var opened = await store.OpenAsync("sample", cache))
            {
                Assert.Equal((1, 0), (opened.ShardsDownloaded, opened.ShardsCached));
                Assert.Equal(description.Fingerprint, opened.Manifest.Fingerprint);
                var original = DatasetSpec.FromFolder(TestData.TrainingSample).Images;
                Assert.Equal(original.Select(i => File.ReadAllBytes(i.Path)),
                    original.Select(i => opened.ReadBytes($"{Path.GetFileName(Path.GetDirectoryName(i.Path))}/{Path.GetFileName(i.Path)}")));

                // The same split per seed as the folder it came from, and a loader reads it.
                var spec = DatasetSpec.FromImagesPerClass("blob:sample", opened.ImagesPerClass, new DatasetOptions());
                var (train, val) = spec.Split(SplitRatio.Default, 1);
                var (folderTrain, folderVal) = DatasetSpec.FromFolder(TestData.TrainingSample).Split(SplitRatio.Default, 1);
                Assert.Equal(folderTrain.Images.Select(i => Path.GetFileName(i.Path)), train.Images.Select(i => Path.GetFileName(i.Path)));
                Assert.Equal(folderVal.Images.Select(i => Path.GetFileName(i.Path)), val.Images.Select(i => Path.GetFileName(i.Path)));
                var loader = new BatchLoader(spec.Images, opened, new LoaderOptions(new PreprocessOptions(16), BatchSize: 16));
                Assert.Equal([16, 14], loader.ReadEpoch(0).Select(b => { using (b) return b.Count; }));
            }
            // Another dataset with the same images is the same shard: nothing to download.
            using (var copy = await store.OpenAsync("copy", cache))
                Assert.Equal((0, 1), (copy.ShardsDownloaded, copy.ShardsCached));
            Assert.Equal(1, cache.Counters.Downloads);
        }
        finally
        {
            Directory.Delete(cacheRoot, true);
        }

        var deleted = await store.DeleteAsync("sample");
        Assert.Equal(first.Dataset.Fingerprint, deleted.Fingerprint);
        Assert.Equal(["copy"], await store.ListAsync());
        var missing = await Assert.ThrowsAsync<KeyNotFoundException>(() => store.DescribeAsync("sample"));
        Assert.Contains("\"sample\" does not exist", missing.Message);
        await Assert.ThrowsAsync<KeyNotFoundException>(() => store.DeleteAsync("sample"));
        using var empty = new ShardCache(Path.Combine(Path.GetTempPath(), "ifcb-data-tests-nope-" + Guid.NewGuid().ToString("N")), 1024);
        await Assert.ThrowsAsync<KeyNotFoundException>(() => store.OpenAsync("nope", empty));
    }

    [Fact]
    public async Task FingerprintDependsOnContentNotOrderAndARemovedFileLeavesTheDataset()
    {
        // One image per shard, so the counts show which images were sent again.
        var store = new BlobDatasetStore(azurite.NewContainer(), new DatasetStoreOptions { ShardBytes = 1 });
        var dir = TestData.TempDirectory();
        try
        {
            foreach (var cls in new[] { "b", "a" })
                Directory.CreateDirectory(Path.Combine(dir, cls));
            var pngs = DatasetSpec.FromFolder(TestData.TrainingSample).Images.Take(4).ToList();
            File.Copy(pngs[0].Path, Path.Combine(dir, "a", "one.png"));
            File.Copy(pngs[1].Path, Path.Combine(dir, "b", "two.png"));
            File.Copy(pngs[2].Path, Path.Combine(dir, "b", "three.PNG"));
            var one = await store.UploadFromFolderAsync("set-1", dir, parallelism: 1);
            var two = await store.UploadFromFolderAsync("set-2", dir, parallelism: 3);
            Assert.Equal(one.Dataset.Fingerprint, two.Dataset.Fingerprint);
            var listing = (await store.GetManifestAsync("set-1")).Files;
            Assert.Equal(DatasetManifest.ComputeFingerprint(listing.Reverse()), one.Dataset.Fingerprint);
            Assert.Equal(3, one.Dataset.Shards);

            File.Delete(Path.Combine(dir, "b", "two.png"));
            File.Copy(pngs[3].Path, Path.Combine(dir, "a", "one.png"), overwrite: true);
            var changed = await store.UploadFromFolderAsync("set-1", dir);
            Assert.Equal((1, 1), (changed.Uploaded, changed.AlreadyPresent));
            Assert.NotEqual(one.Dataset.Fingerprint, changed.Dataset.Fingerprint);
            Assert.Equal(2, (await store.DescribeAsync("set-1")).FileCount);
            Assert.Equal(["a/one.png", "b/three.PNG"], (await store.GetManifestAsync("set-1")).Files.Select(f => f.Key));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public async Task InvalidNamesAreRejectedBeforeAnyRequest()
    {
        var store = new BlobDatasetStore(azurite.NewContainer());
        var e = await Assert.ThrowsAsync<ArgumentException>(() => store.UploadFromFolderAsync("../escape", TestData.TrainingSample));
        Assert.Contains("..", e.Message);
        await Assert.ThrowsAsync<ArgumentException>(() => store.DescribeAsync("a/b"));
        await Assert.ThrowsAsync<ArgumentException>(() => store.DeleteAsync(""));

        var dir = TestData.TempDirectory();
        try
        {
            Directory.CreateDirectory(Path.Combine(dir, "bad:class"));
            File.Copy(DatasetSpec.FromFolder(TestData.TrainingSample).Images[0].Path, Path.Combine(dir, "bad:class", "x.png"));
            var classError = await Assert.ThrowsAsync<ArgumentException>(() => store.UploadFromFolderAsync("ok", dir));
            Assert.Contains("class name", classError.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
