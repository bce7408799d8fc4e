using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure.Storage.Blobs.Models;
using Ifcb.Data.Datasets;
using Ifcb.Data.Datasets.Shards;
using Ifcb.Platform;

namespace Ifcb.Data.Tests;

/// <summary>
/// Datasets under concurrent and interrupted writers, against real Azurite: an upload is a new generation that becomes
/// current in one conditional write, so readers never see a half-written dataset.
/// </summary>
public sealed class DatasetGenerationTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>, IDisposable
{
    private readonly List<string> _folders = [];

    public void Dispose()
    {
        foreach (var cache in _caches)
            cache.Dispose();
        foreach (var folder in _folders)
            Directory.Delete(folder, recursive: true);
    }

    /// <summary>A class folder with <paramref name="perClass"/> images per class taken from the training sample from <paramref name="skip"/> on.</summary>
    private string Folder(int skip, int perClass, params string[] classes)
    {
        var dir = TestData.TempDirectory();
        _folders.Add(dir);
        var pngs = DatasetSpec.FromFolder(TestData.TrainingSample).Images.Select(i => i.Path).ToList();
        var next = skip;
        foreach (var cls in classes)
        {
            Directory.CreateDirectory(Path.Combine(dir, cls));
            for (var i = 0; i < perClass; i++)
                File.Copy(pngs[next++ % pngs.Count], Path.Combine(dir, cls, $"img{i}.png"));
        }
        return dir;
    }

    /// <summary>One image per shard: the per-shard counts and blobs of these tests are per image.</summary>
    private static readonly DatasetStoreOptions OnePerShard = new() { ShardBytes = 1 };

    private static DatasetStoreOptions GracefulOnePerShard => new() { ShardBytes = 1, GarbageGrace = Grace };

    /// <summary>Opens a dataset into a fresh shard cache (every shard downloaded and checked against its hash).</summary>
    private async Task<CachedDataset> OpenFreshAsync(BlobDatasetStore store, string name)
    {
        var root = TestData.TempDirectory();
        _folders.Add(root);
        _caches.Add(new ShardCache(root, 1L << 30));
        return await store.OpenAsync(name, _caches[^1]);
    }

    private readonly List<ShardCache> _caches = [];

    [Fact]
    public async Task Two_concurrent_uploads_to_one_name_one_wins_the_other_is_aborted_and_every_image_verifies()
    {
        var store = new BlobDatasetStore(azurite.NewContainer(), OnePerShard);
        await store.UploadFromFolderAsync("race", Folder(0, 2, "a", "b"));
        // Same names, different content: the old code overwrote each other's blobs in place.
        var first = Folder(4, 5, "a", "b");
        var second = Folder(14, 5, "a", "b");

        // Both uploads have read the dataset's state and stored one shard before either may go on.
        using var bothStarted = new CountdownEvent(2);
        var one = Task.Run(() => store.UploadFromFolderAsync("race", first, parallelism: 1, filesDone: new MeetAtFirstFile(bothStarted)));
        var two = Task.Run(() => store.UploadFromFolderAsync("race", second, parallelism: 1, filesDone: new MeetAtFirstFile(bothStarted)));
        await Task.WhenAll(one, two).ContinueWith(_ => { });

        Assert.Equal(1, new[] { one, two }.Count(t => t.IsCompletedSuccessfully));
        var loser = new[] { one, two }.Single(t => t.IsFaulted).Exception!.InnerException;
        var aborted = Assert.IsType<IfcbException>(loser);
        Assert.Equal(ErrorKind.Aborted, aborted.Kind);
        Assert.Contains("another upload of dataset race finished first", aborted.Message);
        Assert.Contains("upload again", aborted.Message);

        var winner = (await (one.IsCompletedSuccessfully ? one : two)).Dataset;
        Assert.Equal(winner.Fingerprint, (await store.GetManifestAsync("race")).Fingerprint);
        using var opened = await OpenFreshAsync(store, "race"); // verifies every shard against the manifest
        Assert.Equal(10, opened.ShardsDownloaded);
        var source = one.IsCompletedSuccessfully ? first : second;
        foreach (var file in opened.Manifest.Files)
            Assert.Equal(File.ReadAllBytes(Path.Combine(source, file.Class, file.File)), opened.ReadBytes(file.Key));
    }

    [Fact]
    public async Task An_upload_cancelled_midway_leaves_the_previous_generation_fully_readable()
    {
        var store = new BlobDatasetStore(azurite.NewContainer(), OnePerShard);
        var original = Folder(0, 3, "a", "b");
        var v1 = await store.UploadFromFolderAsync("interrupted", original);

        var changed = Folder(10, 4, "a", "b"); // same file names, other content, and more files
        using var cancel = new CancellationTokenSource();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.UploadFromFolderAsync("interrupted", changed, parallelism: 1,
            filesDone: new SynchronousProgress(done => { if (done == 2) cancel.Cancel(); }), cancellationToken: cancel.Token));

        Assert.Equal(v1.Dataset.Fingerprint, (await store.GetManifestAsync("interrupted")).Fingerprint);
        using var opened = await OpenFreshAsync(store, "interrupted");
        Assert.Equal(6, opened.ShardsDownloaded);
        foreach (var file in opened.Manifest.Files)
            Assert.Equal(File.ReadAllBytes(Path.Combine(original, file.Class, file.File)), opened.ReadBytes(file.Key));
        Assert.Equal(6, opened.ImagesPerClass.Values.Sum(keys => keys.Count(key => opened.Load(key).Width > 0)));

        // Running the interrupted upload again stores only the shards it had not stored, and ends where a clean upload of
        // the same folder ends.
        var resumed = await store.UploadFromFolderAsync("interrupted", changed);
        Assert.Equal((2, 6), (resumed.ShardsPresent, resumed.ShardsUploaded));
        var clean = await new BlobDatasetStore(azurite.NewContainer(), OnePerShard).UploadFromFolderAsync("clean", changed);
        Assert.Equal(clean.Dataset.Fingerprint, resumed.Dataset.Fingerprint);
        Assert.Equal(DatasetManifest.ComputeFingerprint(Directory.EnumerateFiles(changed, "*", SearchOption.AllDirectories).Select(path =>
            new DatasetFile(Path.GetFileName(Path.GetDirectoryName(path))!, Path.GetFileName(path), new FileInfo(path).Length,
                Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)))))), resumed.Dataset.Fingerprint);
    }

    [Fact]
    public async Task A_dataset_stored_in_the_old_layout_still_reads_with_the_same_fingerprint()
    {
        var container = azurite.NewContainer();
        await container.CreateIfNotExistsAsync();
        var folder = Folder(0, 2, "a", "b c");
        // The layout before generations, written blob by blob as that code did: datasets/{name}/{class}/{file} with a
        // sha256 metadata entry, then datasets/{name}/manifest.json (formatVersion 1).
        var files = new List<(string Class, string File, long Size, string Sha256)>();
        foreach (var path in Directory.EnumerateFiles(folder, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var bytes = File.ReadAllBytes(path);
            var hash = Convert.ToHexStringLower(SHA256.HashData(bytes));
            var cls = Path.GetFileName(Path.GetDirectoryName(path)!);
            await container.GetBlobClient($"datasets/old/{cls}/{Path.GetFileName(path)}")
                .UploadAsync(BinaryData.FromBytes(bytes), new BlobUploadOptions { Metadata = new Dictionary<string, string> { ["sha256"] = hash } });
            files.Add((cls, Path.GetFileName(path), bytes.LongLength, hash));
        }
        var canonical = string.Concat(files.OrderBy(f => f.Class, StringComparer.Ordinal).ThenBy(f => f.File, StringComparer.Ordinal)
            .Select(f => $"{f.Class}/{f.File} {f.Size} {f.Sha256}\n"));
        var fingerprint = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
        var manifest = new
        {
            formatVersion = 1, name = "old", fingerprint, classes = new[] { "a", "b c" },
            files = files.Select(f => new { @class = f.Class, file = f.File, size = f.Size, sha256 = f.Sha256 }),
        };
        await container.GetBlobClient("datasets/old/manifest.json").UploadAsync(BinaryData.FromBytes(JsonSerializer.SerializeToUtf8Bytes(manifest)));

        var store = new BlobDatasetStore(container, new DatasetStoreOptions { GarbageGrace = Grace });
        Assert.Equal(["old"], await store.ListAsync());
        var listing = await store.GetManifestAsync("old");
        Assert.Equal(fingerprint, listing.Fingerprint);
        Assert.Equal(4, (await store.DescribeAsync("old")).FileCount);

        // NormStats reads its images where they are, one blob each.
        var streamed = store.StreamImages("old", listing.Files);
        await streamed.Completion;
        Assert.Equal(4, streamed.Requests);
        Assert.Equal(File.ReadAllBytes(Path.Combine(folder, "b c", "img1.png")), streamed.ReadBytes("b c/img1.png"));

        // A worker's first open converts it once into shards, with the same fingerprint.
        using (var opened = await OpenFreshAsync(store, "old"))
        {
            Assert.Equal(1, opened.ConvertedFromFormat);
            Assert.Equal(fingerprint, opened.Manifest.Fingerprint);
            Assert.Equal(File.ReadAllBytes(Path.Combine(folder, "b c", "img1.png")), opened.ReadBytes("b c/img1.png"));
            Assert.Equal(2, opened.ImagesPerClass["b c"].Count);
            Assert.Equal(4, opened.ImagesPerClass.Values.Sum(keys => keys.Count(key => opened.Load(key).Width > 0)));
        }
        using (var again = await OpenFreshAsync(store, "old"))
            Assert.Null(again.ConvertedFromFormat);
        var description = await store.DescribeAsync("old");
        Assert.Equal((fingerprint, 1), (description.Fingerprint, description.Shards));

        // The old blobs stay for jobs that read them, and are collected after the grace period.
        Assert.Contains("a/img0.png", await BlobsAsync(container, "old"));
        await PastGraceAsync();
        Assert.Equal(4, await store.CollectGarbageAsync("old", CancellationToken.None));
        Assert.DoesNotContain(await BlobsAsync(container, "old"), n => n.StartsWith("a/", StringComparison.Ordinal) || n.StartsWith("b c/", StringComparison.Ordinal));
        using var afterCollection = await OpenFreshAsync(store, "old");
        Assert.Equal(fingerprint, afterCollection.Manifest.Fingerprint);
    }

    [Fact]
    public async Task A_dataset_stored_one_object_per_image_reads_and_converts_once_with_the_same_fingerprint()
    {
        var container = azurite.NewContainer();
        await container.CreateIfNotExistsAsync();
        var folder = Folder(3, 3, "x", "y");
        // Format 2, as the uploads before shards wrote it: objects/{sha256}, generations/{id}.json, manifest.json.
        var files = new List<DatasetFile>();
        foreach (var path in Directory.EnumerateFiles(folder, "*.png", SearchOption.AllDirectories))
        {
            var bytes = File.ReadAllBytes(path);
            var hash = Convert.ToHexStringLower(SHA256.HashData(bytes));
            await container.GetBlobClient($"datasets/objects-layout/objects/{hash}").UploadAsync(BinaryData.FromBytes(bytes), overwrite: true);
            files.Add(new DatasetFile(Path.GetFileName(Path.GetDirectoryName(path))!, Path.GetFileName(path), bytes.LongLength, hash));
        }
        var fingerprint = DatasetManifest.ComputeFingerprint(files);
        const string generation = "20260101T000000000Z-0123abcd";
        var manifest = JsonSerializer.SerializeToUtf8Bytes(new
        {
            formatVersion = 2, name = "objects-layout", fingerprint, classes = new[] { "x", "y" }, generation,
            committedAt = DateTimeOffset.UtcNow.AddDays(-1), retired = Array.Empty<object>(), deleted = false,
            files = files.Select(f => new { @class = f.Class, file = f.File, size = f.Size, sha256 = f.Sha256 }),
        });
        await container.GetBlobClient($"datasets/objects-layout/generations/{generation}.json").UploadAsync(BinaryData.FromBytes(manifest));
        await container.GetBlobClient("datasets/objects-layout/manifest.json").UploadAsync(BinaryData.FromBytes(manifest));

        var store = new BlobDatasetStore(container, new DatasetStoreOptions { GarbageGrace = Grace, ShardBytes = 16 * 1024 });
        var listing = await store.GetManifestAsync("objects-layout");
        Assert.Equal((fingerprint, generation), (listing.Fingerprint, listing.Generation));
        var streamed = store.StreamImages("objects-layout", listing.Files);
        await streamed.Completion;
        foreach (var file in listing.Files)
            Assert.Equal(File.ReadAllBytes(Path.Combine(folder, file.Class, file.File)), streamed.ReadBytes(file.Key));

        using (var opened = await OpenFreshAsync(store, "objects-layout"))
        {
            Assert.Equal(2, opened.ConvertedFromFormat);
            Assert.Equal(fingerprint, opened.Manifest.Fingerprint);
            Assert.True(opened.ShardsDownloaded > 1, "16 KB shards of six sample images");
            foreach (var file in listing.Files)
                Assert.Equal(File.ReadAllBytes(Path.Combine(folder, file.Class, file.File)), opened.ReadBytes(file.Key));
        }
        await PastGraceAsync();
        // The six objects and the old generation's manifest.
        Assert.Equal(7, await store.CollectGarbageAsync("objects-layout", CancellationToken.None));
        Assert.DoesNotContain(await BlobsAsync(container, "objects-layout"), n => n.StartsWith("objects/", StringComparison.Ordinal));
        Assert.Equal(fingerprint, (await store.GetManifestAsync("objects-layout")).Fingerprint);
    }

    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(2);

    /// <summary>Past the grace period for blobs written before now (Last-Modified has whole seconds).</summary>
    private static Task PastGraceAsync() => Task.Delay(Grace + TimeSpan.FromSeconds(1.2));

    private static async Task<List<string>> BlobsAsync(Azure.Storage.Blobs.BlobContainerClient container, string dataset)
    {
        var names = new List<string>();
        await foreach (var blob in container.GetBlobsAsync(new GetBlobsOptions { Prefix = $"datasets/{dataset}/" }))
            names.Add(blob.Name[$"datasets/{dataset}/".Length..]);
        return names;
    }

    [Fact]
    public async Task A_replaced_generation_stays_readable_for_the_grace_period_and_is_collected_after_it()
    {
        var container = azurite.NewContainer();
        var store = new BlobDatasetStore(container, GracefulOnePerShard);
        var v1 = await store.UploadFromFolderAsync("gc", Folder(0, 2, "a", "b"));
        var v1Files = (await store.GetManifestAsync("gc")).Files;
        var v2Folder = Folder(0, 2, "a", "b");
        File.Copy(DatasetSpec.FromFolder(TestData.TrainingSample).Images[20].Path, Path.Combine(v2Folder, "a", "img0.png"), overwrite: true);
        var v2 = await store.UploadFromFolderAsync("gc", v2Folder);
        Assert.Equal((1, 3), (v2.Uploaded, v2.AlreadyPresent));
        Assert.NotNull(v1.Dataset.Generation);
        Assert.NotEqual(v1.Dataset.Generation, v2.Dataset.Generation);

        // A job that read v1 before the re-upload keeps reading all of it during the grace period.
        var reading = store.StreamImages("gc", v1Files);
        await reading.Completion;
        Assert.All(v1Files, file => Assert.Equal(file.Size, reading.ReadBytes(file.Key).Length));
        Assert.Equal(0, await store.CollectGarbageAsync("gc", CancellationToken.None));

        await PastGraceAsync();
        // v1's replaced shard (the tar and its index) and v1's manifest.
        Assert.Equal(3, await store.CollectGarbageAsync("gc", CancellationToken.None));
        var late = store.StreamImages("gc", v1Files);
        var gone = await Assert.ThrowsAsync<KeyNotFoundException>(() => late.Completion);
        Assert.Contains("re-uploaded or deleted", gone.Message);
        var replaced = v1Files.Single(f => f is { Class: "a", File: "img0.png" });
        Assert.IsType<KeyNotFoundException>(Assert.Throws<ImageDownloadException>(() => late.ReadBytes(replaced.Key)).InnerException);
        var v2Shards = (await store.GetManifestAsync("gc")).Files.Select(f => f.Shard!).Distinct().ToList();
        Assert.Equal(
            ["manifest.json", $"generations/{v2.Dataset.Generation}.json",
                .. v2Shards.SelectMany(s => new[] { $"shards/{s}.index.json", $"shards/{s}.tar" }).Order(StringComparer.Ordinal)],
            (await BlobsAsync(container, "gc")).OrderBy(n => n == "manifest.json" ? 0 : n.StartsWith("generations/", StringComparison.Ordinal) ? 1 : 2)
                .ThenBy(n => n, StringComparer.Ordinal));
        using var opened = await OpenFreshAsync(store, "gc");
        Assert.Equal(4, opened.ShardsDownloaded);
    }

    [Fact]
    public async Task Content_an_upload_reuses_survives_a_collector_that_found_it_unreferenced()
    {
        var container = azurite.NewContainer();
        var store = new BlobDatasetStore(container, GracefulOnePerShard);
        var first = Folder(0, 2, "a");
        await store.UploadFromFolderAsync("reuse", first);
        await store.UploadFromFolderAsync("reuse", Folder(5, 2, "a"));
        await PastGraceAsync(); // the first upload's shards are now unreferenced and old enough to collect

        using var reachedFirstFile = new CountdownEvent(1);
        using var release = new ManualResetEventSlim();
        var upload = Task.Run(() => store.UploadFromFolderAsync("reuse", first, parallelism: 1,
            filesDone: new SynchronousProgress(done => { if (done == 1) { reachedFirstFile.Signal(); release.Wait(TimeSpan.FromSeconds(30)); } })));
        Assert.True(reachedFirstFile.Wait(TimeSpan.FromSeconds(30)));
        // Its manifest is not current yet, so this collector sees the first upload's content as garbage; the upload has
        // renewed what it reuses, so the collector must leave it.
        var collected = await store.CollectGarbageAsync("reuse", CancellationToken.None);
        release.Set();
        var result = await upload;
        // It had renewed img0's shard, not yet img1's: the collector took img1's (tar and index; sent again) and the old manifest.
        Assert.Equal(3, collected);
        Assert.Equal((1, 1), (result.Uploaded, result.AlreadyPresent));
        using var opened = await OpenFreshAsync(store, "reuse");
        Assert.Equal(2, opened.ShardsDownloaded);
    }

    [Fact]
    public async Task An_upload_slower_than_the_grace_period_keeps_renewing_its_shards_so_a_collector_takes_none()
    {
        var store = new BlobDatasetStore(azurite.NewContainer(), GracefulOnePerShard);
        var folder = Folder(0, 2, "a");
        using var reachedFirstFile = new CountdownEvent(1);
        using var release = new ManualResetEventSlim();
        var upload = Task.Run(() => store.UploadFromFolderAsync("slow", folder, parallelism: 1,
            filesDone: new SynchronousProgress(done => { if (done == 1) { reachedFirstFile.Signal(); release.Wait(TimeSpan.FromSeconds(30)); } })));
        Assert.True(reachedFirstFile.Wait(TimeSpan.FromSeconds(30)));
        await PastGraceAsync();
        // The first shard is older than the grace period, and no manifest names it yet; but the upload renewed it.
        Assert.Equal(0, await store.CollectGarbageAsync("slow", CancellationToken.None));
        release.Set();
        await upload;
        using var opened = await OpenFreshAsync(store, "slow");
        Assert.Equal(2, opened.ShardsDownloaded);
        Assert.Equal(File.ReadAllBytes(Path.Combine(folder, "a", "img0.png")), opened.ReadBytes("a/img0.png"));
    }

    [Fact]
    public async Task A_shard_that_vanishes_before_the_commit_fails_it_and_the_upload_run_again_stores_only_that_shard()
    {
        var container = azurite.NewContainer();
        var store = new BlobDatasetStore(container, GracefulOnePerShard);
        var folder = Folder(0, 2, "a");
        using var reachedFirstFile = new CountdownEvent(1);
        using var release = new ManualResetEventSlim();
        var upload = Task.Run(() => store.UploadFromFolderAsync("vanishing", folder, parallelism: 1,
            filesDone: new SynchronousProgress(done => { if (done == 1) { reachedFirstFile.Signal(); release.Wait(TimeSpan.FromSeconds(30)); } })));
        Assert.True(reachedFirstFile.Wait(TimeSpan.FromSeconds(30)));
        foreach (var blob in await BlobsAsync(container, "vanishing"))
            await container.DeleteBlobAsync($"datasets/vanishing/{blob}"); // storage altered behind the upload's back
        await Task.Delay(Grace / 2);
        release.Set();
        var failed = await Assert.ThrowsAsync<IfcbException>(() => upload);
        Assert.Equal(ErrorKind.Unavailable, failed.Kind);
        Assert.Contains("Upload again", failed.Message);
        await Assert.ThrowsAsync<KeyNotFoundException>(() => store.DescribeAsync("vanishing"));

        var again = await store.UploadFromFolderAsync("vanishing", folder);
        Assert.Equal((1, 1), (again.ShardsUploaded, again.ShardsPresent));
    }

    [Fact]
    public async Task A_delete_hides_the_dataset_at_once_and_its_images_are_collected_after_the_grace_period()
    {
        var container = azurite.NewContainer();
        var store = new BlobDatasetStore(container, GracefulOnePerShard);
        var upload = await store.UploadFromFolderAsync("gone", Folder(0, 2, "a"));
        var listing = (await store.GetManifestAsync("gone")).Files;
        await store.UploadFromFolderAsync("back", Folder(0, 1, "a"));
        Assert.Equal(upload.Dataset.Fingerprint, (await store.DeleteAsync("gone")).Fingerprint);
        await store.DeleteAsync("back");

        Assert.Empty(await store.ListAsync());
        await Assert.ThrowsAsync<KeyNotFoundException>(() => store.GetManifestAsync("gone"));
        await Assert.ThrowsAsync<KeyNotFoundException>(() => store.DeleteAsync("gone"));
        await store.StreamImages("gone", listing).Completion; // a job that was reading it finishes

        // A deleted name can be uploaded again at once.
        var again = await store.UploadFromFolderAsync("back", Folder(3, 1, "a"));
        Assert.Equal(again.Dataset.Fingerprint, (await store.GetManifestAsync("back")).Fingerprint);
        Assert.Equal(["back"], await store.ListAsync());

        await PastGraceAsync();
        await store.CollectGarbageAsync();
        Assert.Empty(await BlobsAsync(container, "gone")); // the shards, the generation and finally the tombstone
        using var opened = await OpenFreshAsync(store, "back");
        Assert.Equal(1, opened.ShardsDownloaded);
    }

    [Fact]
    public async Task An_upload_running_while_its_dataset_is_deleted_is_aborted()
    {
        var store = new BlobDatasetStore(azurite.NewContainer(), OnePerShard);
        await store.UploadFromFolderAsync("deleted-meanwhile", Folder(0, 1, "a"));
        using var reachedFirstFile = new CountdownEvent(1);
        using var release = new ManualResetEventSlim();
        var upload = Task.Run(() => store.UploadFromFolderAsync("deleted-meanwhile", Folder(4, 2, "a"), parallelism: 1,
            filesDone: new SynchronousProgress(done => { if (done == 1) { reachedFirstFile.Signal(); release.Wait(TimeSpan.FromSeconds(30)); } })));
        Assert.True(reachedFirstFile.Wait(TimeSpan.FromSeconds(30)));
        await store.DeleteAsync("deleted-meanwhile");
        release.Set();
        var aborted = await Assert.ThrowsAsync<IfcbException>(() => upload);
        Assert.Equal(ErrorKind.Aborted, aborted.Kind);
        Assert.Empty(await store.ListAsync());
    }

    /// <summary>Blocks the upload at its first file until every upload sharing <paramref name="started"/> got there.</summary>
    private sealed class MeetAtFirstFile(CountdownEvent started) : IProgress<int>
    {
        public void Report(int value)
        {
            if (value != 1)
                return;
            started.Signal();
            Assert.True(started.Wait(TimeSpan.FromSeconds(30)), "the other upload never reached its first file");
        }
    }

    private sealed class SynchronousProgress(Action<int> report) : IProgress<int>
    {
        public void Report(int value) => report(value);
    }
}
