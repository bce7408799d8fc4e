using Ifcb.Data.Datasets;
using Ifcb.Data.Imaging;
using Ifcb.Data.Loading;

namespace Ifcb.Data.Tests;

// Shares a collection with LoaderTests, which counts the loader's decode threads.
[Collection(LoaderTests.Collection)]
public class BlobDatasetStoreTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    [Fact]
    public async Task UploadDescribeListMaterialiseAndDelete()
    {
        var container = azurite.NewContainer();
        var store = new BlobDatasetStore(container);
        Assert.Empty(await store.ListAsync());

        var first = await store.UploadFromFolderAsync("sample", TestData.TrainingSample, parallelism: 4);
        Assert.Equal(30, first.Uploaded);
        Assert.Equal(0, first.AlreadyPresent);
        Assert.Equal(["Mesodinium_major", "Strombidium-like"], first.Manifest.Classes);
        Assert.Matches("^[0-9a-f]{64}$", first.Manifest.Fingerprint);

        // Resumable: a second upload finds every blob with the same hash and sends nothing.
        var again = await store.UploadFromFolderAsync("sample", TestData.TrainingSample, parallelism: 1);
        Assert.Equal((0, 30), (again.Uploaded, again.AlreadyPresent));
        Assert.Equal(first.Manifest.Fingerprint, again.Manifest.Fingerprint);

        var description = await store.DescribeAsync("sample");
        Assert.Equal(14, description.CountPerClass["Mesodinium_major"]);
        Assert.Equal(16, description.CountPerClass["Strombidium-like"]);
        Assert.Equal(30, description.FileCount);
        Assert.Equal(first.Manifest.Fingerprint, description.Fingerprint);

        await store.UploadFromFolderAsync("copy", TestData.TrainingSample, parallelism: 2);
        Assert.Equal(["copy", "sample"], await store.ListAsync());

        var cache = TestData.TempDirectory();
        try
        {
            var materialised = await store.MaterializeAsync("sample", cache);
            Assert.Equal((30, 0), (materialised.Downloaded, materialised.ReusedFromCache));
            Assert.Equal(Path.Combine(cache, description.Fingerprint), materialised.LocalRoot);
            var (train, val) = DatasetSpec.FromFolder(materialised.LocalRoot).Split(SplitRatio.Default, 1);
            Assert.Equal([11, 13], train.CountPerClass);
            Assert.Equal([3, 3], val.CountPerClass);
            var original = DatasetSpec.FromFolder(TestData.TrainingSample).Images;
            var cached = DatasetSpec.FromFolder(materialised.LocalRoot).Images;
            Assert.Equal(original.Select(i => File.ReadAllBytes(i.Path)), cached.Select(i => File.ReadAllBytes(i.Path)));
            var reused = await store.MaterializeAsync("copy", cache);
            Assert.Equal((0, 30), (reused.Downloaded, reused.ReusedFromCache));
        }
        finally
        {
            Directory.Delete(cache, true);
        }

        var (perClass, source, manifest) = await store.LoadIntoMemoryAsync("sample");
        var spec = DatasetSpec.FromImagesPerClass("blob:sample", perClass, new DatasetOptions());
        Assert.Equal([14, 16], spec.CountPerClass);
        var loader = new BatchLoader(spec.Images, source, new LoaderOptions(new PreprocessOptions(16), BatchSize: 16));
        Assert.Equal([16, 14], loader.ReadEpoch(0).Select(b => { using (b) return b.Count; }));
        Assert.Equal(30, manifest.Files.Count);

        var deleted = await store.DeleteAsync("sample");
        Assert.Equal(first.Manifest.Fingerprint, deleted.Fingerprint);
        Assert.Equal(["copy"], await store.ListAsync());
        var missing = await Assert.ThrowsAsync<KeyNotFoundException>(() => store.DescribeAsync("sample"));
        Assert.Contains("\"sample\" does not exist", missing.Message);
        await Assert.ThrowsAsync<KeyNotFoundException>(() => store.DeleteAsync("sample"));
        await Assert.ThrowsAsync<KeyNotFoundException>(() => store.MaterializeAsync("nope", Path.GetTempPath()));
    }

    [Fact]
    public async Task FingerprintDependsOnContentNotOrderAndStaleBlobsAreRemoved()
    {
        var store = new BlobDatasetStore(azurite.NewContainer());
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
            Assert.Equal(one.Manifest.Fingerprint, two.Manifest.Fingerprint);
            Assert.Equal(
                DatasetManifest.ComputeFingerprint(one.Manifest.Files.Reverse()),
                one.Manifest.Fingerprint);

            File.Delete(Path.Combine(dir, "b", "two.png"));
            File.Copy(pngs[3].Path, Path.Combine(dir, "a", "one.png"), overwrite: true);
            var changed = await store.UploadFromFolderAsync("set-1", dir);
            Assert.Equal((1, 1, 1), (changed.Uploaded, changed.AlreadyPresent, changed.RemovedStale));
            Assert.NotEqual(one.Manifest.Fingerprint, changed.Manifest.Fingerprint);
            Assert.Equal(2, (await store.DescribeAsync("set-1")).FileCount);
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
