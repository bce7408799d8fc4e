using Azure.Storage.Blobs;
using Ifcb.Data.Datasets;
using Ifcb.NormStats.Engine.Jobs;
using Ifcb.Platform.Jobs;
using Ifcb.Testing;

namespace Ifcb.NormStats.Engine.Tests;

/// <summary>One Azurite for the job tests; every test uses its own containers.</summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    public AzuriteInstance Azurite { get; private set; } = null!;

    public async Task InitializeAsync() => Azurite = await AzuriteInstance.StartAsync();

    public async Task DisposeAsync() => await Azurite.DisposeAsync();
}

/// <summary>The job/shard/cache store and coordinator against real blob storage (Azurite).</summary>
public sealed class NormStatsJobTests(AzuriteFixture fixture) : IClassFixture<AzuriteFixture>, IDisposable
{
    private const string Worker = "normstats-test-1-aaaaaa";
    private static readonly string Sample = Path.Combine(RepoPaths.Root, "testdata", "training-sample");
    private readonly List<string> _folders = [];

    private async Task<(NormStatsJobCoordinator Coordinator, BlobContainerClient Datasets)> NewCoordinatorAsync()
    {
        var datasets = await fixture.Azurite.CreateContainerAsync("datasets");
        var jobs = await fixture.Azurite.CreateContainerAsync("normstats");
        return (new NormStatsJobCoordinator(new NormStatsJobStore(jobs), new ContainerDatasetSource(datasets), workers: 2), datasets);
    }

    /// <summary>The sample PNGs copied <paramref name="copies"/> times under new names (a larger dataset with the same pixels).</summary>
    private string Replicate(int copies, string tag)
    {
        var root = Directory.CreateTempSubdirectory("normstats-replica-").FullName;
        _folders.Add(root);
        foreach (var (className, files) in DatasetSpec.ListClassFolders(Sample))
        {
            Directory.CreateDirectory(Path.Combine(root, className));
            for (var k = 0; k < copies; k++)
                foreach (var file in files)
                    File.Copy(file, Path.Combine(root, className, $"{tag}{k:D3}_{Path.GetFileName(file)}"));
        }
        return root;
    }

    /// <summary>
    /// Uploads in shards of about 16 KB (a few sample images each), so that a job shard's images span several dataset
    /// shards and are read by several ranged reads.
    /// </summary>
    private static async Task UploadAsync(BlobContainerClient datasets, string name, string folder) =>
        await new BlobDatasetStore(datasets, new DatasetStoreOptions { ShardBytes = 16 * 1024 }).UploadFromFolderAsync(name, folder);

    public void Dispose()
    {
        foreach (var folder in _folders)
            Directory.Delete(folder, recursive: true);
    }

    [Fact]
    public async Task Shards_in_any_order_give_the_local_exact_answer_and_the_second_request_is_cached()
    {
        var (coordinator, datasets) = await NewCoordinatorAsync();
        await UploadAsync(datasets, "sample", Sample);
        var options = new NormStatsJobOptions { Resize = 64, ShardSize = 7 };

        var (job, created) = await coordinator.StartAsync("sample", options);
        Assert.True(created);
        Assert.Equal(JobState.Queued, job.State);
        Assert.Equal(30, job.ImagesTotal);
        Assert.Equal([7, 7, 7, 7, 2], job.Shards.Select(s => s.Count));

        var outcomes = new List<ShardOutcome>();
        foreach (var shard in job.Shards.Select(s => s.Shard).Reverse())
            outcomes.Add(await coordinator.RunShardAsync(job.JobId, shard, Worker));
        Assert.All(outcomes, o => Assert.True(o.Counted));
        Assert.Equal([false, false, false, false, true], outcomes.Select(o => o.Finished));

        var done = await coordinator.Jobs.GetAsync(job.JobId, default);
        Assert.NotNull(done);
        Assert.Equal(JobState.Succeeded, done.State);
        Assert.Equal(30, done.ImagesDone);
        Assert.All(done.Shards, s => Assert.Equal((ShardState.Done, Worker, 1), (s.State, s.Worker, s.Attempts)));
        var local = new NormStatsCalculator(64).ComputeExact(DatasetSpec.FromFolder(Sample).Images);
        var result = done.Result!;
        Assert.Equal(30, result.Images);
        Assert.Equal(local.PixelsPerChannel, result.PixelsPerChannel);
        for (var c = 0; c < 3; c++)
        {
            Assert.Equal(local.Mean[c], result.Mean[c], 1e-9);
            Assert.Equal(local.Std[c], result.Std[c], 1e-9);
        }

        // Same content and options (the shard size does not matter): answered from the cache, nothing to compute.
        var (again, _) = await coordinator.StartAsync("sample", options with { ShardSize = 1000 });
        Assert.NotEqual(job.JobId, again.JobId);
        Assert.Equal(JobState.Succeeded, again.State);
        Assert.True(again.Cached);
        Assert.Empty(again.Shards);
        Assert.Equal(job.JobId, again.Result!.ComputedByJob);
        Assert.Equal(result.Mean, again.Result.Mean);
        var looked = await coordinator.Jobs.GetCachedAsync(done.DatasetFingerprint, options.WithDefaults().CacheHash(), default);
        Assert.Equal(result.Std, looked!.Std);
        Assert.Null(await coordinator.Jobs.GetCachedAsync(done.DatasetFingerprint, (options with { Resize = 65 }).WithDefaults().CacheHash(), default));
    }

    [Fact]
    public async Task A_redelivered_or_duplicated_shard_is_counted_exactly_once()
    {
        var (coordinator, datasets) = await NewCoordinatorAsync();
        await UploadAsync(datasets, "dup", Sample);
        var (job, _) = await coordinator.StartAsync("dup", new NormStatsJobOptions { Resize = 32, ShardSize = 10 });

        // Three deliveries of shard 0 at once (a redelivery racing the original), then once more later.
        var racing = await Task.WhenAll(Enumerable.Range(0, 3).Select(i => coordinator.RunShardAsync(job.JobId, 0, $"worker-{i}")));
        Assert.Single(racing, o => o.Counted);
        var late = await coordinator.RunShardAsync(job.JobId, 0, "worker-late");
        Assert.False(late.Counted);
        var record = (await coordinator.Jobs.GetAsync(job.JobId, default))!;
        Assert.Equal(10, record.ImagesDone);
        Assert.Equal(1, record.ShardsDone);
        var stored = await coordinator.Jobs.GetShardAsync(job.JobId, 0, default);
        Assert.Equal(stored!.Worker, record.Shards[0].Worker);

        // The two other shards finish concurrently: both are counted (ETag retries), exactly one finishes the job.
        var last = await Task.WhenAll(coordinator.RunShardAsync(job.JobId, 1, "a"), coordinator.RunShardAsync(job.JobId, 2, "b"));
        Assert.All(last, o => Assert.True(o.Counted));
        Assert.Single(last, o => o.Finished);
        var done = (await coordinator.Jobs.GetAsync(job.JobId, default))!;
        Assert.Equal(JobState.Succeeded, done.State);
        Assert.Equal(30, done.Result!.Images);
        var local = new NormStatsCalculator(32).ComputeExact(DatasetSpec.FromFolder(Sample).Images);
        Assert.Equal(local.Std[0], done.Result.Std[0], 1e-9);
        Assert.False((await coordinator.RunShardAsync(job.JobId, 2, "c")).Counted);
    }

    [Fact]
    public async Task Neuston_shards_are_aligned_to_batches_and_reproduce_the_in_process_estimator()
    {
        var (coordinator, datasets) = await NewCoordinatorAsync();
        var folder = Replicate(8, "n"); // 240 images: batches of 108, 108, 24
        await UploadAsync(datasets, "replica", folder);
        var (job, _) = await coordinator.StartAsync("replica", new NormStatsJobOptions { Resize = 16, ShardSize = 50, Estimator = NormStatsEstimator.Neuston });
        Assert.Equal([(0, 108), (108, 108), (216, 24)], job.Shards.Select(s => (s.Start, s.Count)));
        foreach (var shard in new[] { 2, 0, 1 })
            await coordinator.RunShardAsync(job.JobId, shard, Worker);

        var done = (await coordinator.Jobs.GetAsync(job.JobId, default))!;
        Assert.Equal(JobState.Succeeded, done.State);
        var images = DatasetSpec.FromFolder(folder).Images;
        var local = new NormStatsCalculator(16).ComputeNeuston(images);
        var exact = new NormStatsCalculator(16).ComputeExact(images);
        Assert.Equal(NormStatsEstimator.Neuston, done.Result!.Estimator);
        for (var c = 0; c < 3; c++)
        {
            Assert.Equal(local.Mean[c], done.Result.Mean[c], 1e-12);
            Assert.Equal(local.Std[c], done.Result.Std[c], 1e-12);
        }
        // Three batches: the estimator is no longer the pooled std.
        Assert.NotEqual(exact.Std[0], done.Result.Std[0], 9);
    }

    [Fact]
    public async Task Corrupt_images_are_counted_listed_and_excluded()
    {
        var (coordinator, datasets) = await NewCoordinatorAsync();
        var folder = Replicate(1, "c");
        var bad = Path.Combine(folder, "Mesodinium_major", "zz_broken.png");
        await File.WriteAllBytesAsync(bad, [0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
        await UploadAsync(datasets, "corrupt", folder);
        var (job, _) = await coordinator.StartAsync("corrupt", new NormStatsJobOptions { Resize = 24, ShardSize = 8 });
        Assert.Equal(31, job.ImagesTotal);
        foreach (var shard in job.Shards)
            await coordinator.RunShardAsync(job.JobId, shard.Shard, Worker);

        var done = (await coordinator.Jobs.GetAsync(job.JobId, default))!;
        Assert.Equal(JobState.Succeeded, done.State);
        Assert.Equal(30, done.Result!.Images);
        var corrupt = Assert.Single(done.Result.CorruptImages);
        Assert.Equal("Mesodinium_major/zz_broken.png", corrupt.Path);
        Assert.False(string.IsNullOrWhiteSpace(corrupt.Reason));
        Assert.Equal(1, done.Shards.Sum(s => s.Failed));
        var clean = new NormStatsCalculator(24).ComputeExact(DatasetSpec.FromFolder(Sample).Images);
        Assert.Equal(clean.Mean[0], done.Result.Mean[0], 1e-9);
        Assert.Equal(clean.Std[0], done.Result.Std[0], 1e-9);
    }

    [Fact]
    public async Task Bad_requests_fail_with_the_exception_the_service_maps_to_a_status()
    {
        var (coordinator, datasets) = await NewCoordinatorAsync();
        await UploadAsync(datasets, "small", Sample);

        await Assert.ThrowsAsync<KeyNotFoundException>(() => coordinator.StartAsync("no-such-dataset", new NormStatsJobOptions()));
        await Assert.ThrowsAsync<ArgumentException>(() => coordinator.StartAsync("bad/name", new NormStatsJobOptions()));
        await Assert.ThrowsAsync<ArgumentException>(() => coordinator.StartAsync("small", new NormStatsJobOptions { Resize = -3 }));
        await Assert.ThrowsAsync<ArgumentException>(() => coordinator.StartAsync("small", new NormStatsJobOptions { ClassMin = 5, ClassMax = 4 }));
        await Assert.ThrowsAsync<ArgumentException>(() => coordinator.StartAsync("small", new NormStatsJobOptions { ClassConfigCsv = "class,a\nx,1\n" }));

        var empty = await Assert.ThrowsAsync<NoImagesAfterFiltersException>(() => coordinator.StartAsync("small", new NormStatsJobOptions { ClassMin = 20 }));
        Assert.Contains("Mesodinium_major=14", empty.Message);
        Assert.Contains("Strombidium-like=16", empty.Message);
        Assert.Contains("class-min 20", empty.Message);
    }

    [Fact]
    public async Task A_dataset_replaced_after_planning_is_read_as_planned_and_a_collected_one_fails_the_shard_with_a_reason()
    {
        var (coordinator, datasets) = await NewCoordinatorAsync();
        var store = new BlobDatasetStore(datasets, new DatasetStoreOptions { GarbageGrace = TimeSpan.FromSeconds(2) });
        var folder = Replicate(1, "d");
        var planned = await store.UploadFromFolderAsync("changing", folder);
        var (job, _) = await coordinator.StartAsync("changing", new NormStatsJobOptions { Resize = 16 });
        var first = Directory.EnumerateFiles(Path.Combine(folder, "Mesodinium_major")).Order(StringComparer.Ordinal).First();
        File.Copy(Directory.EnumerateFiles(Path.Combine(folder, "Strombidium-like")).First(), first, overwrite: true);
        await store.UploadFromFolderAsync("changing", folder);

        // The generation the job planned stays readable for the grace period after the re-upload: the job computes on
        // exactly the images it planned, not on a mix of two versions.
        var outcome = await coordinator.RunShardAsync(job.JobId, 0, Worker);
        Assert.True(outcome.Finished);
        Assert.Equal(planned.Dataset.Fingerprint, outcome.Job!.DatasetFingerprint);

        // Once a generation is collected, a job planned on it fails its shard with a reason instead of computing other images.
        var (orphan, _) = await coordinator.StartAsync("changing", new NormStatsJobOptions { Resize = 17 });
        await store.DeleteAsync("changing");
        await Task.Delay(TimeSpan.FromSeconds(3.2)); // past the grace period (Last-Modified has whole seconds)
        Assert.True(await store.CollectGarbageAsync("changing", CancellationToken.None) > 0);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => coordinator.RunShardAsync(orphan.JobId, 0, Worker));
        Assert.Contains("lost", error.Message);
        Assert.Contains("start the computation again", error.Message);
        var (failed, written) = await coordinator.FailAsync(orphan.JobId, error.Message);
        Assert.True(written);
        Assert.Equal(JobState.Failed, failed.State);
        Assert.False((await coordinator.RunShardAsync(orphan.JobId, 0, Worker)).Counted);
    }

    [Fact]
    public void The_cache_key_ignores_what_does_not_change_the_answer()
    {
        var plain = new NormStatsJobOptions().WithDefaults();
        Assert.Equal(plain.CacheHash(), (plain with { Seed = 99, ShardSize = 3 }).CacheHash());
        Assert.NotEqual(plain.CacheHash(), (plain with { ClassMax = 10 }).CacheHash());
        Assert.NotEqual((plain with { ClassMax = 10 }).CacheHash(), (plain with { ClassMax = 10, Seed = 2 }).CacheHash());
        Assert.NotEqual(plain.CacheHash(), (plain with { Estimator = NormStatsEstimator.Neuston }).CacheHash());
        Assert.NotEqual(plain.CacheHash(), (plain with { Resize = 224 }).CacheHash());
        var csv = plain with { ClassConfigCsv = "class,keep\na,1\nb,0\n", ClassConfigColumn = "keep" };
        var reformatted = plain with { ClassConfigCsv = "\"class\",\"keep\"\r\n\"a\",1.0\r\nb,0\r\n", ClassConfigColumn = "keep" };
        Assert.Equal(csv.CacheHash(), reformatted.CacheHash());
        Assert.NotEqual(csv.CacheHash(), plain.CacheHash());
        Assert.Equal(108, (plain with { Estimator = NormStatsEstimator.Neuston, ShardSize = 1 }).EffectiveShardSize);
        Assert.Equal(2052, (plain with { Estimator = NormStatsEstimator.Neuston }).EffectiveShardSize);
        Assert.Equal(2000, plain.EffectiveShardSize);
    }

    [Fact]
    public async Task A_shard_that_keeps_killing_its_workers_fails_the_job_after_the_limit_instead_of_looping()
    {
        var (coordinator, datasets) = await NewCoordinatorAsync();
        await UploadAsync(datasets, "poison", Sample);
        var (job, _) = await coordinator.StartAsync("poison", new NormStatsJobOptions { Resize = 64, ShardSize = 10 });

        // A worker that dies mid-shard leaves the shard started and unfinished; the broker redelivers it to the next one.
        foreach (var worker in new[] { "normstats-a", "normstats-b", "normstats-c" })
        {
            using var dies = new CancellationTokenSource();
            await dies.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => CrashMidShardAsync(coordinator, job.JobId, worker, dies.Token));
        }
        var fourth = await coordinator.RunShardAsync(job.JobId, 1, "normstats-d");

        Assert.False(fourth.Counted);
        var failed = await coordinator.Jobs.GetAsync(job.JobId, default);
        Assert.Equal(JobState.Failed, failed!.State);
        Assert.Contains("Shard 1 (images 10-19) stopped its worker 3 times (normstats-a, normstats-b, normstats-c)", failed.Error);
        // The other shards' workers are unaffected: a shard of a failed job is simply not computed.
        Assert.False((await coordinator.RunShardAsync(job.JobId, 0, "normstats-d")).Counted);
    }

    /// <summary>What a worker that dies while computing shard 1 leaves behind: the shard marked started, no partial.</summary>
    private static async Task CrashMidShardAsync(NormStatsJobCoordinator coordinator, string jobId, string worker, CancellationToken dead)
    {
        await coordinator.Jobs.UpdateAsync(jobId, j => j.Begin(DateTimeOffset.UtcNow) with
        {
            Shards = [.. j.Shards.Select(s => s.Shard == 1 ? s with { State = ShardState.Running, Worker = worker, Attempts = s.Attempts + 1, Workers = [.. s.Workers, worker] } : s)],
        }, default);
        dead.ThrowIfCancellationRequested();
    }
}
