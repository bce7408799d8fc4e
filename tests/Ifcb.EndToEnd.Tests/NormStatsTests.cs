using System.Diagnostics;
using System.Globalization;
using Aspire.Hosting.Testing;
using Grpc.Core;
using Ifcb.Client;
using Ifcb.Contracts;
using Ifcb.Data.Datasets;
using Ifcb.Data.Imaging;
using Ifcb.Protos;
using Ifcb.Testing;
using MassTransit;
using Xunit.Abstractions;

namespace Ifcb.EndToEnd.Tests;

/// <summary>
/// NormStats as a platform service: datasets uploaded through the Datasets API, jobs sharded over real RabbitMQ to two
/// NormStats instances, partials and results in real blob storage, answers checked against an exact two-pass
/// computation done here. Every dataset gets file names unique to the run, so no test is answered from another's cache.
/// </summary>
[Collection(PlatformCollection.Name)]
public sealed class NormStatsTests(PlatformFixture platform, ITestOutputHelper output) : IDisposable
{
    private const double SampleMean299 = 0.6569522065337648;
    private const double SampleStd299 = 0.22312375060121084;
    private static readonly string Sample = Path.Combine(RepoPaths.Root, "testdata", "training-sample");
    private readonly List<string> _folders = [];

    private Ifcb.Protos.NormStats.NormStatsClient NormStats => new(platform.Channel("normstats"));

    public void Dispose()
    {
        foreach (var folder in _folders)
            Directory.Delete(folder, recursive: true);
    }

    /// <summary>
    /// Uploads the sample PNGs, copied <paramref name="copies"/> times under run-unique names: the same pixels (so the
    /// same exact mean and std, which are invariant under replication) but a new dataset fingerprint.
    /// </summary>
    private async Task<DatasetInfo> UploadReplicaAsync(string name, int copies)
    {
        var folder = Directory.CreateTempSubdirectory("normstats-e2e-").FullName;
        _folders.Add(folder);
        var tag = Guid.NewGuid().ToString("N")[..8];
        foreach (var (className, files) in DatasetSpec.ListClassFolders(Sample))
        {
            Directory.CreateDirectory(Path.Combine(folder, className));
            for (var k = 0; k < copies; k++)
                foreach (var file in files)
                    File.Copy(file, Path.Combine(folder, className, $"{tag}-{k:D3}-{Path.GetFileName(file)}"));
        }
        return await DatasetUpload.UploadFolderAsync(new Datasets.DatasetsClient(platform.Channel("training")), name, folder, PlatformFixture.Auth);
    }

    /// <summary>The exact statistics of the sample at <paramref name="size"/>: resize, v/255 as float32, two passes in double.</summary>
    private static (double Mean, double Std, long Pixels) TwoPassReference(int size)
    {
        var values = new List<double>();
        foreach (var image in DatasetSpec.FromFolder(Sample).Images)
        {
            var decoded = ImageDecoder.DecodeFile(image.Path);
            var resized = PillowResize.Resize(decoded.Pixels, decoded.Width, decoded.Height, decoded.Channels, size, size);
            for (var i = 0; i < resized.Length; i += decoded.Channels)
                values.Add(resized[i] / 255f);
        }
        var mean = values.Sum() / values.Count;
        return (mean, Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / values.Count), values.Count);
    }

    private async Task<NormJob> GetAsync(string jobId)
    {
        while (true)
        {
            try
            {
                return await NormStats.GetAsync(new JobRef { JobId = jobId });
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable)
            {
                // A killed replica may still be in the proxy's rotation for a moment.
                await Task.Delay(100);
            }
        }
    }

    private async Task<NormJob> WaitAsync(string jobId, Func<NormJob, bool> until, TimeSpan timeout, int pollMilliseconds = 300)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var job = await GetAsync(jobId);
            if (until(job))
                return job;
            if (watch.Elapsed > timeout)
                throw new TimeoutException($"Job {jobId} is {job.State} ({job.ShardsDone}/{job.ShardsTotal} shards) after {timeout}.");
            await Task.Delay(pollMilliseconds);
        }
    }

    private static bool Ended(NormJob job) => job.State is NormJobState.Succeeded or NormJobState.Failed;

    private static void AssertClose(double expected, double actual, double tolerance, string what) =>
        Assert.True(Math.Abs(expected - actual) <= tolerance, $"{what}: {actual:R} vs {expected:R} (|Δ| {Math.Abs(expected - actual):E2} > {tolerance:E0})");

    [Fact]
    public async Task Sample_statistics_match_the_exact_computation_and_a_second_request_is_answered_from_the_cache()
    {
        var dataset = await UploadReplicaAsync("ns-sample", 1);
        var options = new NormOptions { Resize = 299 };
        var started = await NormStats.ComputeAsync(new ComputeNormRequest { Dataset = "ns-sample", Options = options }, PlatformFixture.Auth);
        Assert.False(started.Cached);
        Assert.Equal(dataset.Fingerprint, started.DatasetFingerprint);
        Assert.Equal(30, started.ImagesTotal);
        Assert.Equal(1, started.ShardsTotal);

        var updates = new List<NormJob>();
        using (var watch = NormStats.Watch(new JobRef { JobId = started.JobId }, deadline: DateTime.UtcNow.AddMinutes(3)))
        {
            await foreach (var update in watch.ResponseStream.ReadAllAsync())
                updates.Add(update);
        }
        var done = updates[^1];
        Assert.True(done.State == NormJobState.Succeeded, $"job ended {done.State}: {done.Error}");
        Assert.Equal(30, done.ImagesDone);
        Assert.True(done.ImagesPerSecond > 0);

        var reference = TwoPassReference(299);
        var result = done.Result;
        Assert.Equal(30, result.Images);
        Assert.Equal(reference.Pixels, result.PixelsPerChannel);
        Assert.Empty(result.CorruptImages);
        for (var c = 0; c < 3; c++)
        {
            AssertClose(reference.Mean, result.Mean[c], 1e-6, $"mean[{c}]");
            AssertClose(reference.Std, result.Std[c], 1e-6, $"std[{c}]");
            AssertClose(SampleMean299, result.Mean[c], 1e-6, $"mean[{c}] vs the known value");
            AssertClose(SampleStd299, result.Std[c], 1e-6, $"std[{c}] vs the known value");
        }
        var imgNorm = Ifcb.Contracts.ImgNorm.Parse(result.ImgNorm);
        Assert.Equal(result.Mean[0], imgNorm.Mean[0]);
        var computed = await platform.Events.WaitForAsync<NormStatsComputed>(e => e.JobId == started.JobId, TimeSpan.FromSeconds(30));
        Assert.Equal(imgNorm, computed.ImgNorm);
        output.WriteLine($"--img-norm {result.ImgNorm}");

        // Same content, same options (the shard size is not part of the key): answered at once from the cache.
        var again = await NormStats.ComputeAsync(new ComputeNormRequest { Dataset = "ns-sample", Options = new NormOptions { Resize = 299, ShardSize = 3 } }, PlatformFixture.Auth);
        Assert.Equal(NormJobState.Succeeded, again.State);
        Assert.True(again.Cached);
        Assert.Equal(0, again.ShardsTotal);
        Assert.Equal(started.JobId, again.Result.ComputedByJob);
        Assert.Equal(result.Mean, again.Result.Mean);
        Assert.Equal(result.Std, again.Result.Std);

        var looked = await NormStats.LookupAsync(new LookupNormRequest { DatasetFingerprint = dataset.Fingerprint, Options = options });
        Assert.Equal(result.Std, looked.Std);
        var missing = await Assert.ThrowsAsync<RpcException>(async () =>
            await NormStats.LookupAsync(new LookupNormRequest { DatasetFingerprint = dataset.Fingerprint, Options = new NormOptions { Resize = 224 } }));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task Many_shards_give_the_answer_of_one()
    {
        await UploadReplicaAsync("ns-one-shard", 3);
        await UploadReplicaAsync("ns-many-shards", 3);
        var one = await NormStats.ComputeAsync(new ComputeNormRequest { Dataset = "ns-one-shard", Options = new NormOptions { Resize = 64, ShardSize = 1000 } }, PlatformFixture.Auth);
        var many = await NormStats.ComputeAsync(new ComputeNormRequest { Dataset = "ns-many-shards", Options = new NormOptions { Resize = 64, ShardSize = 7 } }, PlatformFixture.Auth);
        Assert.Equal((1, 13), (one.ShardsTotal, many.ShardsTotal));

        one = await WaitAsync(one.JobId, Ended, TimeSpan.FromMinutes(3));
        many = await WaitAsync(many.JobId, Ended, TimeSpan.FromMinutes(3));
        Assert.True(many.State == NormJobState.Succeeded, $"job ended {many.State}: {many.Error}");
        Assert.Equal(NormJobState.Succeeded, one.State);
        Assert.All(many.Shards, s => Assert.Equal(NormShardState.Done, s.State));
        Assert.Equal(90, many.ImagesDone);
        Assert.Equal(90, many.Shards.Sum(s => s.Images));
        output.WriteLine($"13 shards ran on {string.Join(", ", many.Shards.Select(s => s.Worker).Distinct())}");

        var reference = TwoPassReference(64);
        for (var c = 0; c < 3; c++)
        {
            AssertClose(one.Result.Mean[c], many.Result.Mean[c], 1e-9, $"mean[{c}] 13 shards vs 1");
            AssertClose(one.Result.Std[c], many.Result.Std[c], 1e-9, $"std[{c}] 13 shards vs 1");
            AssertClose(reference.Mean, many.Result.Mean[c], 1e-6, $"mean[{c}]");
            AssertClose(reference.Std, many.Result.Std[c], 1e-6, $"std[{c}]");
        }
    }

    [Fact]
    public async Task Bad_requests_get_the_status_that_says_what_to_fix()
    {
        await UploadReplicaAsync("ns-bad-requests", 1);

        var unknown = await Assert.ThrowsAsync<RpcException>(async () =>
            await NormStats.ComputeAsync(new ComputeNormRequest { Dataset = "ns-no-such-dataset" }, PlatformFixture.Auth));
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);

        var badOptions = await Assert.ThrowsAsync<RpcException>(async () =>
            await NormStats.ComputeAsync(new ComputeNormRequest { Dataset = "ns-bad-requests", Options = new NormOptions { Resize = -1 } }, PlatformFixture.Auth));
        Assert.Equal(StatusCode.InvalidArgument, badOptions.StatusCode);

        var empty = await Assert.ThrowsAsync<RpcException>(async () =>
            await NormStats.ComputeAsync(new ComputeNormRequest { Dataset = "ns-bad-requests", Options = new NormOptions { ClassMin = 50 } }, PlatformFixture.Auth));
        Assert.Equal(StatusCode.FailedPrecondition, empty.StatusCode);
        Assert.Contains("Mesodinium_major=14", empty.Status.Detail);
        Assert.Contains("Strombidium-like=16", empty.Status.Detail);

        var noJob = await Assert.ThrowsAsync<RpcException>(async () => await NormStats.GetAsync(new JobRef { JobId = "0123" }));
        Assert.Equal(StatusCode.NotFound, noJob.StatusCode);
    }

    [Fact]
    public async Task The_bus_request_Training_uses_answers_with_statistics_or_an_error()
    {
        await UploadReplicaAsync("ns-bus-request", 1);
        var messaging = await platform.App.GetConnectionStringAsync("messaging", CancellationToken.None)
            ?? throw new InvalidOperationException("The AppHost has no 'messaging' connection string.");
        var bus = Bus.Factory.CreateUsingRabbitMq(rabbit => rabbit.Host(new Uri(messaging), h =>
        {
            h.Username("guest");
            h.Password("guest");
        }));
        await bus.StartAsync();
        try
        {
            var client = bus.CreateRequestClient<ComputeNormStats>(RequestTimeout.After(m: 3));
            var options = new NormStatsOptions(32, null, null, 2, null, 12345, NeustonEstimator: false, ShardSize: 0);
            // The answer comes at once; a caller polls with the same job id until the statistics are there, as Training
            // does, so no broker message is held for the length of a computation.
            var jobId = Guid.NewGuid().ToString("N");
            var first = (await client.GetResponse<NormStatsResult>(new ComputeNormStats("ns-bus-request", options, jobId))).Message;
            var polls = 1;
            while (!first.Finished && first.Error is null && polls++ < 600)
            {
                Assert.Equal(jobId, first.JobId);
                await Task.Delay(200);
                first = (await client.GetResponse<NormStatsResult>(new ComputeNormStats("ns-bus-request", options, jobId))).Message;
            }
            Assert.True(first.Finished, $"not finished after {polls} polls");
            Assert.Null(first.Error);
            Assert.False(first.Cached);
            Assert.Equal(30, first.Images);
            var reference = TwoPassReference(32);
            AssertClose(reference.Mean, first.ImgNorm!.Mean[0], 1e-6, "mean");
            AssertClose(reference.Std, first.ImgNorm.Std[0], 1e-6, "std");

            var second = (await client.GetResponse<NormStatsResult>(new ComputeNormStats("ns-bus-request", options with { Seed = 99 }))).Message;
            Assert.True(second.Finished); // nothing sampled, so the seed does not matter: answered from the cache at once
            Assert.True(second.Cached);
            Assert.Equal(first.ImgNorm, second.ImgNorm);

            var unknown = (await client.GetResponse<NormStatsResult>(new ComputeNormStats("ns-no-such-dataset", options))).Message;
            Assert.Contains("does not exist", unknown.Error);
            var empty = (await client.GetResponse<NormStatsResult>(new ComputeNormStats("ns-bus-request", options with { ClassMin = 50 }))).Message;
            Assert.Contains("no images left", empty.Error);
        }
        finally
        {
            await bus.StopAsync();
        }
    }

    /// <summary>Run by <see cref="NormStatsWorkerFailureTests"/> on a platform of its own (it kills a replica).</summary>
    internal async Task KilledWorkerScenarioAsync()
    {
        const int copies = 30; // 900 images in 45 shards: long enough to kill a worker in the middle
        await UploadReplicaAsync("ns-kill", copies);
        var started = await NormStats.ComputeAsync(new ComputeNormRequest { Dataset = "ns-kill", Options = new NormOptions { Resize = 299, ShardSize = 20 } }, PlatformFixture.Auth);
        Assert.Equal(45, started.ShardsTotal);

        // Wait until both instances have stored shards and one of them is busy with another, then SIGKILL that one.
        var running = await WaitAsync(started.JobId, j => Ended(j) || (
            j.Shards.Where(s => s.State == NormShardState.Done).Select(s => s.Worker).Distinct().Count() >= 2 &&
            j.Shards.Any(s => s.State == NormShardState.Running)), TimeSpan.FromMinutes(3), pollMilliseconds: 50);
        Assert.False(Ended(running), "the job finished before a worker could be killed; make it longer");
        var victimShard = running.Shards.First(s => s.State == NormShardState.Running);
        var victim = victimShard.Worker;
        var pid = int.Parse(victim.Split('-')[^2], CultureInfo.InvariantCulture);
        using (var worker = Process.GetProcessById(pid))
            worker.Kill(); // SIGKILL: its shard is never acknowledged, RabbitMQ hands it to the other instance
        output.WriteLine($"killed {victim} during shard {victimShard.Shard} with {running.ShardsDone}/{running.ShardsTotal} shards done");

        var done = await WaitAsync(started.JobId, Ended, TimeSpan.FromMinutes(4));
        Assert.True(done.State == NormJobState.Succeeded, $"job ended {done.State}: {done.Error}");
        Assert.All(done.Shards, s => Assert.Equal(NormShardState.Done, s.State));
        Assert.Equal(900, done.ImagesDone);
        Assert.Equal(900, done.Shards.Sum(s => s.Images));
        Assert.Equal(900, done.Result.Images);
        // The shards left at the kill were finished by the surviving instance (the victim may have stored one just before dying).
        Assert.Contains(done.Shards.Where(s => running.Shards[s.Shard].State != NormShardState.Done), s => s.Worker != victim);
        output.WriteLine($"redelivered shards: {string.Join(", ", done.Shards.Where(s => s.Attempts > 1).Select(s => $"{s.Shard} ({s.Attempts} attempts, stored by {s.Worker})"))}");

        var reference = TwoPassReference(299);
        for (var c = 0; c < 3; c++)
        {
            AssertClose(reference.Mean, done.Result.Mean[c], 1e-6, $"mean[{c}]");
            AssertClose(reference.Std, done.Result.Std[c], 1e-6, $"std[{c}]");
        }
        await platform.Events.WaitForAsync<NormStatsComputed>(e => e.JobId == started.JobId && e.Images == 900, TimeSpan.FromSeconds(30));
    }
}
