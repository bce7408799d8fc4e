// Throughput of a sharded norm-stats job: the job coordinator over real blob storage (a private Azurite), with 1 and
// then 2 workers taking shards from one queue as competing consumers do, against the engine computing the same images
// in process from local files (no storage, no sharding). Each worker uses --threads threads, so "2 workers" needs
// 2x that many cores to scale. Usage: dotnet run -c Release -- [--copies N] [--shard-size S] [--threads T] [--resize R]
using System.Diagnostics;
using System.Globalization;
using System.Threading.Channels;
using Ifcb.Data.Datasets;
using Ifcb.NormStats.Engine;
using Ifcb.NormStats.Engine.Jobs;
using Ifcb.Platform.Jobs;
using Ifcb.Testing;

var copies = 20;
var shardSize = 100;
var threads = 1;
var resize = 299;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--copies": copies = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--shard-size": shardSize = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--resize": resize = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        default:
            Console.Error.WriteLine($"Unknown argument {args[i]}; use --copies N, --shard-size S, --threads T, --resize R.");
            return 2;
    }
}

var sample = Path.Combine(RepoPaths.Root, "testdata", "training-sample");
var folder = Directory.CreateTempSubdirectory("normstats-bench-").FullName;
try
{
    foreach (var (className, files) in DatasetSpec.ListClassFolders(sample))
    {
        Directory.CreateDirectory(Path.Combine(folder, className));
        for (var k = 0; k < copies; k++)
            foreach (var file in files)
                File.Copy(file, Path.Combine(folder, className, $"{k:D4}_{Path.GetFileName(file)}"));
    }
    var images = DatasetSpec.FromFolder(folder).Images;
    Console.WriteLine($"{images.Count} images, resize {resize}, shard size {shardSize}, {threads} thread(s) per worker, " +
        $"{Environment.ProcessorCount} cores");

    var local = Stopwatch.StartNew();
    var reference = new NormStatsCalculator(resize, workers: threads).ComputeExact(images);
    var localRate = images.Count / local.Elapsed.TotalSeconds;
    Console.WriteLine($"in-process engine, 1 call  : {localRate,8:F0} img/s");

    await using var azurite = await AzuriteInstance.StartAsync();
    var datasets = await azurite.CreateContainerAsync("datasets");
    await new BlobDatasetStore(datasets).UploadFromFolderAsync("bench", folder);

    var rates = new Dictionary<int, double>();
    foreach (var workers in new[] { 1, 2 })
    {
        // A fresh results container per run, so the second run is not answered from the first one's cache.
        var store = new NormStatsJobStore(await azurite.CreateContainerAsync("normstats"));
        var (job, _) = await new NormStatsJobCoordinator(store, new ContainerDatasetSource(datasets), threads).StartAsync("bench",
            new NormStatsJobOptions { Resize = resize, ShardSize = shardSize });
        var queue = Channel.CreateUnbounded<int>();
        foreach (var shard in job.Shards)
            queue.Writer.TryWrite(shard.Shard);
        queue.Writer.Complete();
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, workers).Select(w => Task.Run(async () =>
        {
            var coordinator = new NormStatsJobCoordinator(store, new ContainerDatasetSource(datasets), threads);
            await foreach (var shard in queue.Reader.ReadAllAsync())
                await coordinator.RunShardAsync(job.JobId, shard, $"bench-worker-{w}");
        })));
        var seconds = clock.Elapsed.TotalSeconds;
        var done = await store.GetAsync(job.JobId, default) ?? throw new InvalidOperationException("job vanished");
        if (done.State != JobState.Succeeded || Math.Abs(done.Result!.Std[0] - reference.Std[0]) > 1e-9)
            throw new InvalidOperationException(
                $"job ended {done.State} with std {done.Result?.Std[0]} instead of {reference.Std[0]}: {done.Error}");
        rates[workers] = images.Count / seconds;
        Console.WriteLine($"sharded job, {workers} worker(s)  : {rates[workers],8:F0} img/s  = " +
            $"{rates[workers] / localRate:F2} x in-process   ({job.Shards.Count} shards, {seconds:F1} s)");
    }
    Console.WriteLine($"scaling 2 workers / 1 worker: x{rates[2] / rates[1]:F2}");
    return 0;
}
finally
{
    Directory.Delete(folder, recursive: true);
}
