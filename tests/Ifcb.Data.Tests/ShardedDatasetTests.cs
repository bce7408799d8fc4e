using Azure.Storage.Blobs.Models;
using Ifcb.Data.Datasets;
using Ifcb.Data.Datasets.Shards;

namespace Ifcb.Data.Tests;

/// <summary>
/// What packing datasets in shards is for, against real Azurite: a re-upload sends only the shards around a change,
/// readers fetch few large pieces instead of one blob per image, a worker's jobs share one download, and describing a
/// dataset reads a summary, not its listing.
/// </summary>
public sealed class ShardedDatasetTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>, IDisposable
{
    private readonly List<string> _folders = [];

    public void Dispose()
    {
        foreach (var folder in _folders)
            Directory.Delete(folder, recursive: true);
    }

    private string NewFolder()
    {
        var dir = TestData.TempDirectory();
        _folders.Add(dir);
        return dir;
    }

    /// <summary>Three classes of 20 sample images each (60 images, ~800 KB): small shards hold about two to five.</summary>
    private string ThreeClasses()
    {
        var dir = NewFolder();
        var pngs = DatasetSpec.FromFolder(TestData.TrainingSample).Images.Select(i => i.Path).ToList();
        var next = 0;
        foreach (var cls in new[] { "alpha", "beta", "gamma" })
        {
            Directory.CreateDirectory(Path.Combine(dir, cls));
            for (var i = 0; i < 20; i++)
                File.Copy(pngs[next++ % pngs.Count], Path.Combine(dir, cls, $"img{i:D2}.png"));
        }
        return dir;
    }

    /// <summary>The production rule at the scale of the sample: a shard may end once it holds 16 KB, at one image in 2.</summary>
    private static readonly DatasetStoreOptions SmallShards = new() { ShardBytes = 16 * 1024, ShardBoundaryOneIn = 2 };

    [Fact]
    public async Task A_re_upload_after_changing_one_image_sends_only_the_shards_around_it()
    {
        var store = new BlobDatasetStore(azurite.NewContainer(), SmallShards);
        var folder = ThreeClasses();
        var first = await store.UploadFromFolderAsync("dedupe", folder);
        Assert.True(first.ShardsUploaded >= 8, $"{first.ShardsUploaded} shards");

        // One image in the middle of the middle class changes.
        File.Copy(DatasetSpec.FromFolder(TestData.TrainingSample).Images[29].Path, Path.Combine(folder, "beta", "img10.png"), overwrite: true);
        var changed = await store.UploadFromFolderAsync("dedupe", folder);
        Assert.InRange(changed.ShardsUploaded, 1, 2);
        Assert.True(changed.ShardsPresent >= first.ShardsUploaded - 2, $"{changed.ShardsPresent} of {first.ShardsUploaded} shards reused");
        Assert.Equal(60, changed.Uploaded + changed.AlreadyPresent);
        Assert.True(changed.Uploaded <= 12, $"{changed.Uploaded} images sent again");

        // A new class that sorts first and a removed one at the end leave the middle alone.
        Directory.CreateDirectory(Path.Combine(folder, "aaa-new"));
        File.Copy(Path.Combine(folder, "alpha", "img00.png"), Path.Combine(folder, "aaa-new", "x.png"));
        Directory.Delete(Path.Combine(folder, "gamma"), recursive: true);
        var reshaped = await store.UploadFromFolderAsync("dedupe", folder);
        Assert.InRange(reshaped.ShardsUploaded, 1, 3);
        Assert.Equal(41, reshaped.Dataset.FileCount);
        Assert.Equal(reshaped.Dataset.Fingerprint, (await store.GetManifestAsync("dedupe")).Fingerprint);
    }

    [Fact]
    public async Task Streamed_images_come_by_a_few_ranged_reads_and_a_tampered_shard_fails_the_read_not_the_image()
    {
        var container = azurite.NewContainer();
        var store = new BlobDatasetStore(container, SmallShards);
        var folder = ThreeClasses();
        var upload = await store.UploadFromFolderAsync("ranged", folder);
        var listing = (await store.GetManifestAsync("ranged")).Files;

        var all = store.StreamImages("ranged", listing);
        foreach (var file in listing)
            Assert.Equal(File.ReadAllBytes(Path.Combine(folder, file.Class, file.File)), all.ReadBytes(file.Key));
        await all.Completion;
        Assert.Equal(upload.Dataset.Shards, all.Requests); // one ranged read per shard, not one per image

        // Every other image: still one read per shard (the gaps are small), and only those images are handed out.
        var half = listing.Where((_, i) => i % 2 == 0).ToList();
        var some = store.StreamImages("ranged", half);
        await some.Completion;
        Assert.Equal(upload.Dataset.Shards, some.Requests);
        Assert.Throws<FileNotFoundException>(() => some.ReadBytes(listing[1].Key));

        // One byte of one image changed in storage: the read fails naming it, and readers are told storage failed
        // (ImageDownloadException), not that the image is corrupt.
        var victim = listing[7];
        var blob = container.GetBlobClient($"datasets/ranged/shards/{victim.Shard}.tar");
        var bytes = (await blob.DownloadContentAsync()).Value.Content.ToArray();
        bytes[victim.Offset!.Value + 100] ^= 0xFF;
        await blob.UploadAsync(BinaryData.FromBytes(bytes), overwrite: true);
        var tampered = store.StreamImages("ranged", listing);
        var error = await Assert.ThrowsAsync<InvalidDataException>(() => tampered.Completion);
        Assert.Contains(victim.Key, error.Message);
        Assert.IsType<InvalidDataException>(Assert.Throws<ImageDownloadException>(() => tampered.ReadBytes(victim.Key)).InnerException);

        // A worker's cache refuses the whole shard: its hash no longer matches its name.
        using var cache = new ShardCache(NewFolder(), 1L << 30);
        await Assert.ThrowsAsync<InvalidDataException>(() => store.OpenAsync("ranged", cache));
    }

    [Fact]
    public async Task Jobs_opening_one_dataset_on_one_worker_download_each_shard_once()
    {
        var store = new BlobDatasetStore(azurite.NewContainer(), SmallShards);
        var folder = ThreeClasses();
        var upload = await store.UploadFromFolderAsync("shared", folder);
        using var cache = new ShardCache(NewFolder(), 1L << 30);

        // Four jobs start at once (a sweep's trials), then a fifth comes later (a resumed job).
        var opens = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => store.OpenAsync("shared", cache))));
        Assert.Equal(upload.Dataset.Shards, cache.Counters.Downloads);
        Assert.All(opens, o => Assert.Equal(upload.Dataset.Shards, o.ShardsDownloaded + o.ShardsCached));
        foreach (var open in opens)
            open.Dispose();
        using var later = await store.OpenAsync("shared", cache);
        Assert.Equal((0, upload.Dataset.Shards), (later.ShardsDownloaded, later.ShardsCached));
        Assert.Equal(upload.Dataset.Shards, cache.Counters.Downloads);
        Assert.Equal(File.ReadAllBytes(Path.Combine(folder, "gamma", "img19.png")), later.ReadBytes("gamma/img19.png"));
    }

    [Fact]
    public async Task Describe_reads_the_summary_and_the_manifest_stays_small_whatever_the_dataset_size()
    {
        var container = azurite.NewContainer();
        var store = new BlobDatasetStore(container, SmallShards);
        var upload = await store.UploadFromFolderAsync("summary", ThreeClasses());
        var manifest = await container.GetBlobClient("datasets/summary/manifest.json").GetPropertiesAsync();
        // Shards and counts only: about 100 bytes per shard, nothing per image.
        Assert.True(manifest.Value.ContentLength < 600 + 160 * upload.Dataset.Shards, $"{manifest.Value.ContentLength} bytes");

        // Without any shard index the listing cannot be read, but describe still answers.
        await foreach (var blob in container.GetBlobsAsync(new GetBlobsOptions { Prefix = "datasets/summary/shards/" }))
        {
            if (blob.Name.EndsWith(".index.json", StringComparison.Ordinal))
                await container.DeleteBlobAsync(blob.Name);
        }
        var description = await store.DescribeAsync("summary");
        Assert.Equal((60, upload.Dataset.Fingerprint), (description.FileCount, description.Fingerprint));
        Assert.Equal(20, description.CountPerClass["beta"]);
        Assert.Contains("re-uploaded or deleted", (await Assert.ThrowsAsync<KeyNotFoundException>(() => store.GetManifestAsync("summary"))).Message);
    }
}
