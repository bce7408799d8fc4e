using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure.Storage.Blobs.Models;
using Ifcb.Data.Datasets;
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

    [Fact]
    public async Task Two_concurrent_uploads_to_one_name_one_wins_the_other_is_aborted_and_every_image_verifies()
    {
        var store = new BlobDatasetStore(azurite.NewContainer());
        await store.UploadFromFolderAsync("race", Folder(0, 2, "a", "b"));
        // Same names, different content: the old code overwrote each other's blobs in place.
        var first = Folder(4, 5, "a", "b");
        var second = Folder(14, 5, "a", "b");

        // Both uploads have read the dataset's state and sent one file before either may go on.
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

        var winner = (await (one.IsCompletedSuccessfully ? one : two)).Manifest;
        Assert.Equal(winner.Fingerprint, (await store.GetManifestAsync("race")).Fingerprint);
        var cache = TestData.TempDirectory();
        _folders.Add(cache);
        var materialized = await store.MaterializeAsync("race", cache); // verifies every image against the manifest
        Assert.Equal(10, materialized.Downloaded);
        var source = one.IsCompletedSuccessfully ? first : second;
        foreach (var file in winner.Files)
            Assert.Equal(File.ReadAllBytes(Path.Combine(source, file.Class, file.File)), File.ReadAllBytes(Path.Combine(materialized.LocalRoot, file.Class, file.File)));
    }

    [Fact]
    public async Task An_upload_cancelled_midway_leaves_the_previous_generation_fully_readable()
    {
        var store = new BlobDatasetStore(azurite.NewContainer());
        var original = Folder(0, 3, "a", "b");
        var v1 = await store.UploadFromFolderAsync("interrupted", original);

        var changed = Folder(10, 4, "a", "b"); // same file names, other content, and more files
        using var cancel = new CancellationTokenSource();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.UploadFromFolderAsync("interrupted", changed, parallelism: 1,
            filesDone: new SynchronousProgress(done => { if (done == 2) cancel.Cancel(); }), cancellationToken: cancel.Token));

        Assert.Equal(v1.Manifest.Fingerprint, (await store.GetManifestAsync("interrupted")).Fingerprint);
        var cache = TestData.TempDirectory();
        _folders.Add(cache);
        var materialized = await store.MaterializeAsync("interrupted", cache);
        Assert.Equal(6, materialized.Downloaded);
        foreach (var file in v1.Manifest.Files)
            Assert.Equal(File.ReadAllBytes(Path.Combine(original, file.Class, file.File)), File.ReadAllBytes(Path.Combine(materialized.LocalRoot, file.Class, file.File)));
        var (inMemory, memory, _) = await store.LoadIntoMemoryAsync("interrupted");
        Assert.Equal(6, inMemory.Values.Sum(paths => paths.Count(path => memory.Load(path).Width > 0)));
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

        var store = new BlobDatasetStore(container);
        Assert.Equal(["old"], await store.ListAsync());
        Assert.Equal(fingerprint, (await store.GetManifestAsync("old")).Fingerprint);
        var cache = TestData.TempDirectory();
        _folders.Add(cache);
        var materialized = await store.MaterializeAsync("old", cache);
        Assert.Equal(4, materialized.Downloaded);
        Assert.Equal(File.ReadAllBytes(Path.Combine(folder, "b c", "img1.png")), File.ReadAllBytes(Path.Combine(materialized.LocalRoot, "b c", "img1.png")));
        var (perClass, memory, _) = await store.LoadIntoMemoryAsync("old");
        Assert.Equal(2, perClass["b c"].Count);
        Assert.Equal(4, perClass.Values.Sum(paths => paths.Count(path => memory.Load(path).Width > 0)));

        // Its next upload stores a generation with the same fingerprint; the old blobs are collected after the grace period.
        var graceful = new BlobDatasetStore(container, new DatasetStoreOptions { GarbageGrace = Grace });
        var converted = await graceful.UploadFromFolderAsync("old", folder);
        Assert.Equal(fingerprint, converted.Manifest.Fingerprint);
        Assert.NotNull(converted.Manifest.Generation);
        Assert.Contains("a/img0.png", await BlobsAsync(container, "old"));
        await PastGraceAsync();
        Assert.Equal(4, await graceful.CollectGarbageAsync("old", CancellationToken.None));
        Assert.DoesNotContain(await BlobsAsync(container, "old"), n => n.StartsWith("a/", StringComparison.Ordinal) || n.StartsWith("b c/", StringComparison.Ordinal));
        Assert.Equal(fingerprint, (await graceful.MaterializeAsync("old", cache)).Manifest.Fingerprint);
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
        var store = new BlobDatasetStore(container, new DatasetStoreOptions { GarbageGrace = Grace });
        var v1 = await store.UploadFromFolderAsync("gc", Folder(0, 2, "a", "b"));
        var v2Folder = Folder(0, 2, "a", "b");
        File.Copy(DatasetSpec.FromFolder(TestData.TrainingSample).Images[20].Path, Path.Combine(v2Folder, "a", "img0.png"), overwrite: true);
        var v2 = await store.UploadFromFolderAsync("gc", v2Folder);
        Assert.Equal((1, 3, 0), (v2.Uploaded, v2.AlreadyPresent, v2.RemovedStale));
        Assert.NotNull(v1.Manifest.Generation);
        Assert.NotEqual(v1.Manifest.Generation, v2.Manifest.Generation);

        // A job that read v1 before the re-upload keeps reading all of it during the grace period.
        foreach (var file in v1.Manifest.Files)
            Assert.Equal(file.Size, (await store.DownloadImageAsync("gc", file.Class, file.File, file.Sha256)).Length);
        Assert.Equal(0, await store.CollectGarbageAsync("gc", CancellationToken.None));

        await PastGraceAsync();
        Assert.Equal(2, await store.CollectGarbageAsync("gc", CancellationToken.None)); // v1's replaced image and v1's manifest
        var replaced = v1.Manifest.Files.Single(f => f is { Class: "a", File: "img0.png" });
        var gone = await Assert.ThrowsAsync<KeyNotFoundException>(() => store.DownloadImageAsync("gc", "a", "img0.png", replaced.Sha256));
        Assert.Contains("re-uploaded or deleted", gone.Message);
        Assert.Equal(
            ["manifest.json", $"generations/{v2.Manifest.Generation}.json", .. v2.Manifest.Files.Select(f => $"objects/{f.Sha256}").Distinct().Order(StringComparer.Ordinal)],
            (await BlobsAsync(container, "gc")).OrderBy(n => n == "manifest.json" ? 0 : n.StartsWith("generations/", StringComparison.Ordinal) ? 1 : 2).ThenBy(n => n, StringComparer.Ordinal));
        var cache = TestData.TempDirectory();
        _folders.Add(cache);
        Assert.Equal(4, (await store.MaterializeAsync("gc", cache)).Downloaded);
    }

    [Fact]
    public async Task Content_an_upload_reuses_survives_a_collector_that_found_it_unreferenced()
    {
        var container = azurite.NewContainer();
        var store = new BlobDatasetStore(container, new DatasetStoreOptions { GarbageGrace = Grace });
        var first = Folder(0, 2, "a");
        await store.UploadFromFolderAsync("reuse", first);
        await store.UploadFromFolderAsync("reuse", Folder(5, 2, "a"));
        await PastGraceAsync(); // the first upload's objects are now unreferenced and old enough to collect

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
        // It had renewed img0's content, not yet img1's: the collector took img1's (sent again) and the old manifest.
        Assert.Equal(2, collected);
        Assert.Equal((1, 1), (result.Uploaded, result.AlreadyPresent));
        var cache = TestData.TempDirectory();
        _folders.Add(cache);
        Assert.Equal(2, (await store.MaterializeAsync("reuse", cache)).Downloaded);
    }

    [Fact]
    public async Task An_upload_slower_than_the_grace_period_restores_what_a_collector_took_before_it_commits()
    {
        var store = new BlobDatasetStore(azurite.NewContainer(), new DatasetStoreOptions { GarbageGrace = Grace });
        using var reachedFirstFile = new CountdownEvent(1);
        using var release = new ManualResetEventSlim();
        var upload = Task.Run(() => store.UploadFromFolderAsync("slow", Folder(0, 2, "a"), parallelism: 1,
            filesDone: new SynchronousProgress(done => { if (done == 1) { reachedFirstFile.Signal(); release.Wait(TimeSpan.FromSeconds(30)); } })));
        Assert.True(reachedFirstFile.Wait(TimeSpan.FromSeconds(30)));
        await PastGraceAsync();
        Assert.Equal(1, await store.CollectGarbageAsync("slow", CancellationToken.None)); // the first image: old, and no manifest names it yet
        release.Set();
        await upload;
        var cache = TestData.TempDirectory();
        _folders.Add(cache);
        Assert.Equal(2, (await store.MaterializeAsync("slow", cache)).Downloaded);
    }

    [Fact]
    public async Task A_delete_hides_the_dataset_at_once_and_its_images_are_collected_after_the_grace_period()
    {
        var container = azurite.NewContainer();
        var store = new BlobDatasetStore(container, new DatasetStoreOptions { GarbageGrace = Grace });
        var upload = await store.UploadFromFolderAsync("gone", Folder(0, 2, "a"));
        await store.UploadFromFolderAsync("back", Folder(0, 1, "a"));
        Assert.Equal(upload.Manifest.Fingerprint, (await store.DeleteAsync("gone")).Fingerprint);
        await store.DeleteAsync("back");

        Assert.Empty(await store.ListAsync());
        await Assert.ThrowsAsync<KeyNotFoundException>(() => store.GetManifestAsync("gone"));
        await Assert.ThrowsAsync<KeyNotFoundException>(() => store.DeleteAsync("gone"));
        foreach (var file in upload.Manifest.Files) // a job that was reading it finishes
            await store.DownloadImageAsync("gone", file.Class, file.File, file.Sha256);

        // A deleted name can be uploaded again at once.
        var again = await store.UploadFromFolderAsync("back", Folder(3, 1, "a"));
        Assert.Equal(again.Manifest.Fingerprint, (await store.GetManifestAsync("back")).Fingerprint);
        Assert.Equal(["back"], await store.ListAsync());

        await PastGraceAsync();
        await store.CollectGarbageAsync();
        Assert.Empty(await BlobsAsync(container, "gone")); // the images, the generation and finally the tombstone
        var cache = TestData.TempDirectory();
        _folders.Add(cache);
        Assert.Equal(1, (await store.MaterializeAsync("back", cache)).Downloaded);
    }

    [Fact]
    public async Task An_upload_running_while_its_dataset_is_deleted_is_aborted()
    {
        var store = new BlobDatasetStore(azurite.NewContainer());
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
