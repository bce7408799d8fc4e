// Datasets at lab scale (issue #15): each figure against a reference measured in the same run, on synthetic sets made
// from the sample PNGs. upload: DatasetUpload.UploadFolderAsync through the platform vs raw Azure SDK uploads of the same
// files one blob per image and of the same bytes as ~64 MB blobs, in the platform's Azurite. norm: a platform NormStats
// job (resize 224) with one and with two workers vs the local engine `ifcb norm --resize 224` runs. firstbatch: a
// training job's attempt, from started_at to first_batch_at, cold and warm, vs a raw download of the same bytes. rss: peak
// RSS of every service and of this process (the CLI's part) during the large set's upload and a NormStats job on it.
// Usage: dotnet run -c Release --project bench/Ifcb.Datasets.Bench -- [--images 20000] [--large 200000|0]
//        [--sections generate,upload,norm,firstbatch,rss] [--work DIR]
using System.Diagnostics;
using System.Globalization;
using Azure.Storage.Blobs;
using Grpc.Core;
using Ifcb.Client;
using Ifcb.Data.Datasets;
using Ifcb.NormStats.Engine;
using Ifcb.Protos;

const double TodayUploadImagesPerSecond = 147; // issue #15, 20k images on this machine, one blob per image
const int NormResize = 224;
const int Seed = 15;

var images = 20_000;
var large = 200_000;
var work = Path.Combine(Path.GetTempPath(), "ifcb-datasets-bench");
string[] allSections = ["generate", "upload", "norm", "firstbatch", "rss"];
var sections = new HashSet<string>(allSections, StringComparer.Ordinal);
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--images" when i + 1 < args.Length: images = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--large" when i + 1 < args.Length: large = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--work" when i + 1 < args.Length: work = Path.GetFullPath(args[++i]); break;
        case "--sections" when i + 1 < args.Length:
            sections = new HashSet<string>(args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                StringComparer.Ordinal);
            break;
        default:
            Console.Error.WriteLine($"Unknown argument {args[i]}; use --images N, --large N|0, " +
                $"--sections {string.Join(',', allSections)} (any of them), --work DIR.");
            return 2;
    }
}
if (images < 1 || large < 0 || sections.Count == 0 || sections.Except(allSections).Any())
{
    Console.Error.WriteLine($"--images must be >= 1, --large >= 0, --sections a list of {string.Join(',', allSections)}.");
    return 2;
}

using var cancel = new CancellationTokenSource();
// Ctrl-C cancels the run instead of killing the process, so the platforms are disposed and their processes stopped.
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};
var ct = cancel.Token;
var results = new List<string[]>();
(NormStatsResult Result, double Seconds)? localNorm = null;
double? oneWorkerNormSeconds = null;
Directory.CreateDirectory(work);
Console.WriteLine($"work {work}, {Environment.ProcessorCount} cores, sections {string.Join(',', allSections.Where(sections.Contains))}");

try
{
    var clock = Stopwatch.StartNew();
    var main = sections.Overlaps(["generate", "upload", "norm", "firstbatch"])
        ? SyntheticSet.Ensure(work, "images", images, maxSide: null, Seed, ct)
        : null;
    if (main is not null)
        Console.WriteLine($"set: {main.Images} images in {SyntheticSet.Classes} classes, {main.Megabytes:F1} MB ({main.Folder})");
    var small = large > 0 && sections.Overlaps(["generate", "rss"])
        ? SyntheticSet.Ensure(work, "small", large, maxSide: 64, Seed + 1, ct)
        : null;
    if (small is not null)
        Console.WriteLine($"large set: {small.Images} images, {small.Megabytes:F1} MB ({small.Folder})");
    Console.WriteLine($"sets ready in {clock.Elapsed.TotalSeconds:F1} s (generated once, then cached)");

    if (main is not null && sections.Overlaps(["upload", "norm", "firstbatch"]))
    {
        await using var platform = await StartPlatformAsync(normStatsWorkers: 1);
        var blobs = new BlobServiceClient(await platform.BlobConnectionStringAsync(ct));
        var dataset = await UploadAsync(platform, main, $"bench-{main.Images}", timed: sections.Contains("upload"));
        IReadOnlyList<string>? packed = null;
        if (sections.Contains("upload"))
            packed = await UploadReferencesAsync(blobs, main, dataset.Seconds);
        if (sections.Contains("norm"))
            await NormAsync(platform, main, dataset.Name, workers: 1);
        if (sections.Contains("firstbatch"))
            await FirstBatchAsync(platform, blobs, main, dataset.Name, packed);
    }
    if (main is not null && sections.Contains("norm"))
    {
        await using var platform = await StartPlatformAsync(normStatsWorkers: 2);
        var dataset = await UploadAsync(platform, main, $"bench-{main.Images}", timed: false);
        await NormAsync(platform, main, dataset.Name, workers: 2);
    }
    if (sections.Contains("rss") && small is not null)
        await RssAsync(small);
    else if (sections.Contains("rss"))
        Console.WriteLine("rss skipped: it measures the large set, and --large is 0");
}
catch (Exception e) when (ct.IsCancellationRequested && e is OperationCanceledException or RpcException)
{
    Console.Error.WriteLine("cancelled; every process the run started was stopped");
    return 130;
}
catch (Exception e)
{
    Console.Error.WriteLine($"the benchmark failed (every process it started was stopped): {e}");
    return 1;
}
finally
{
    WriteTable();
}
return 0;

async Task<BenchPlatform> StartPlatformAsync(int normStatsWorkers)
{
    var clock = Stopwatch.StartNew();
    var platform = await BenchPlatform.StartAsync(normStatsWorkers, ct);
    Console.WriteLine($"platform up ({normStatsWorkers} NormStats worker(s), 1 Training worker) in {clock.Elapsed.TotalSeconds:F1} s");
    return platform;
}

async Task<(string Name, double Seconds)> UploadAsync(BenchPlatform platform, SyntheticSet set, string name, bool timed)
{
    var clock = Stopwatch.StartNew();
    var info = await DatasetUpload.UploadFolderAsync(platform.Datasets, name, set.Folder, BenchPlatform.Auth, cancellationToken: ct);
    var seconds = clock.Elapsed.TotalSeconds;
    if (info.Images != set.Images)
        throw new InvalidOperationException($"the platform stored {info.Images} images of {set.Images}");
    Console.WriteLine($"platform upload      : {Rate(set.Images, seconds)} img/s, {set.Megabytes / seconds,7:F2} MB/s " +
        $"({set.Images} images, {seconds:F1} s, {info.Uploaded} sent)");
    if (timed)
    {
        Add("upload", "platform upload vs today (img/s)", Rate(set.Images, seconds), $"today {TodayUploadImagesPerSecond} (issue #15)",
            Ratio(set.Images / seconds / TodayUploadImagesPerSecond), ">= 10x");
    }
    return (name, seconds);
}

async Task<IReadOnlyList<string>> UploadReferencesAsync(BlobServiceClient blobs, SyntheticSet set, double platformSeconds)
{
    var files = set.Files();
    var perImage = await RawBlobs.UploadPerImageAsync(blobs.GetBlobContainerClient("bench-raw-per-image"), files, 8, ct);
    Console.WriteLine($"raw SDK, blob/image  : {Rate(set.Images, perImage)} img/s, {set.Megabytes / perImage,7:F2} MB/s (parallelism 8)");
    var (packed, packedSeconds) = await RawBlobs.UploadPackedAsync(blobs.GetBlobContainerClient("bench-raw-packed"), files, ct);
    Console.WriteLine($"raw SDK, 64 MB blobs : {Rate(set.Images, packedSeconds)} img/s, {set.Megabytes / packedSeconds,7:F2} MB/s " +
        $"({packed.Count} blobs)");
    // Today's layout (one blob per image) at the speed of raw SDK calls, for information: the issue's goals are the rows
    // against today's measured rate and against large blobs.
    Add("upload", "platform upload vs raw (img/s)", Rate(set.Images, platformSeconds), $"raw blob/image {Rate(set.Images, perImage)}",
        Ratio(perImage / platformSeconds), "-");
    Add("upload", "platform upload (MB/s)", $"{set.Megabytes / platformSeconds:F2}", $"raw 64 MB blobs {set.Megabytes / packedSeconds:F2}",
        Ratio(packedSeconds / platformSeconds), ">= 0.5x");
    return packed;
}

async Task NormAsync(BenchPlatform platform, SyntheticSet set, string dataset, int workers)
{
    if (localNorm is null)
    {
        var local = Stopwatch.StartNew();
        // What `ifcb norm --resize 224 FOLDER` does without a server.
        localNorm = (new NormStatsCalculator(NormResize).ComputeExact(DatasetSpec.FromFolder(set.Folder).Images, cancellationToken: ct),
            local.Elapsed.TotalSeconds);
        Console.WriteLine($"local ifcb norm      : {Rate(set.Images, localNorm.Value.Seconds)} img/s ({localNorm.Value.Seconds:F1} s)");
    }
    var (localResult, localSeconds) = localNorm.Value;

    var clock = Stopwatch.StartNew();
    var job = await platform.NormStats.ComputeAsync(new ComputeNormRequest
    {
        Dataset = dataset, Options = new NormOptions { Resize = NormResize },
    }, BenchPlatform.Auth, cancellationToken: ct);
    while (job.State is not (NormJobState.Succeeded or NormJobState.Failed))
    {
        await Task.Delay(TimeSpan.FromMilliseconds(250), ct);
        job = await platform.NormStats.GetAsync(new JobRef { JobId = job.JobId }, cancellationToken: ct);
    }
    var seconds = clock.Elapsed.TotalSeconds;
    if (job.State != NormJobState.Succeeded)
        throw new InvalidOperationException($"norm job {job.JobId} failed: {job.Error}");
    var difference = job.Result.Mean.Zip(localResult.Mean).Concat(job.Result.Std.Zip(localResult.Std))
        .Max(p => Math.Abs(p.First - p.Second));
    var exact = difference <= 1e-9 && job.Result.Images == localResult.ImageCount;
    Console.WriteLine($"platform norm, {workers} wkr : {Rate(set.Images, seconds)} img/s ({seconds:F1} s, {job.ShardsTotal} shards" +
        $"{(job.Cached ? ", CACHED" : "")}); mean/std max |diff| vs local {difference:E1}: {(exact ? "equal (1e-9)" : "DIFFERENT")}");
    Add("norm", $"platform NormStats, {workers} worker(s) (img/s)", Rate(set.Images, seconds), $"local {Rate(set.Images, localSeconds)}",
        Ratio(localSeconds / seconds), workers == 1 ? ">= 0.8x" : "-");
    if (workers == 1)
        oneWorkerNormSeconds = seconds;
    else if (oneWorkerNormSeconds is { } one)
        Add("norm", "NormStats scaling, 2 workers / 1 worker", Rate(set.Images, seconds), $"1 worker {Rate(set.Images, one)}",
            Ratio(one / seconds), ">= 1.8x");
    Add("norm", $"mean/std equal local, {workers} worker(s)", $"{difference:E1}", "local engine", exact ? "equal" : "DIFFERENT", "<= 1e-9");
}

async Task FirstBatchAsync(BenchPlatform platform, BlobServiceClient blobs, SyntheticSet set, string dataset,
    IReadOnlyList<string>? packed)
{
    var container = blobs.GetBlobContainerClient("bench-raw-packed");
    packed ??= (await RawBlobs.UploadPackedAsync(container, set.Files(), ct)).Blobs;
    var (bytes, rawSeconds) = await RawBlobs.DownloadAsync(container, packed, ct);
    Console.WriteLine($"raw SDK download     : {bytes / 1e6 / rawSeconds,7:F2} MB/s " +
        $"({bytes / 1e6:F1} MB in {packed.Count} blobs, {rawSeconds:F2} s)");
    var cold = await TimeFirstBatchAsync(platform, dataset, "bench-cold");
    var warm = await TimeFirstBatchAsync(platform, dataset, "bench-warm");
    var sameWorker = cold.Worker == warm.Worker;
    Add("firstbatch", "cold: started_at to first_batch_at (s)", cold.Measured, $"raw download {rawSeconds:F2} s",
        cold.Seconds is { } c ? Ratio(c / rawSeconds) : "n/a", "<= 2x");
    Add("firstbatch", "warm: started_at to first_batch_at (s)", warm.Measured, "goal 5 s",
        warm.Seconds is { } w ? Ratio(w / 5) : "n/a", "<= 1x");
    // Code from before the attempts recorded their dataset leaves dataset_ready_at empty: nothing to judge then.
    Add("firstbatch", "warm: shards downloaded", warm.DatasetRecorded ? $"{warm.ShardsDownloaded} ({warm.ShardsCached} cached)" : "n/a",
        sameWorker ? "same worker as cold" : $"OTHER worker ({cold.Worker} / {warm.Worker})",
        !warm.DatasetRecorded ? "n/a" : warm.ShardsDownloaded == 0 ? "0" : "NOT 0", "0");
}

async Task<FirstBatch> TimeFirstBatchAsync(BenchPlatform platform, string dataset, string trainId)
{
    var training = platform.Training;
    var job = await training.StartTrainingAsync(new StartTrainingRequest
    {
        Dataset = dataset, Model = "squeezenet1_1", TrainId = trainId, Untrain = true, Seed = 7, Resize = 32, Batch = 16,
        Emax = 1, Emin = 1,
    }, BenchPlatform.Auth, cancellationToken: ct);
    var clock = Stopwatch.StartNew();
    double? runningAt = null;
    double? batchSeenAt = null;
    while (true)
    {
        await Task.Delay(TimeSpan.FromMilliseconds(200), ct);
        job = await training.GetJobAsync(new JobRef { JobId = job.JobId }, cancellationToken: ct);
        if (job.State == JobState.Running)
            runningAt ??= clock.Elapsed.TotalSeconds;
        if (job.State == JobState.Running && (job.Batch > 0 || job.Epochs.Count > 0))
            batchSeenAt ??= clock.Elapsed.TotalSeconds;
        var attempt = job.AttemptHistory.LastOrDefault();
        var ended = job.State is JobState.Succeeded or JobState.Failed or JobState.Cancelled;
        // Without first_batch_at (code from before it was recorded) the job's progress shows the batch was read.
        if (attempt is { FirstBatchAt.Length: > 0 } || ended || (batchSeenAt is not null && clock.Elapsed.TotalSeconds > batchSeenAt + 5))
            break;
        if (clock.Elapsed > TimeSpan.FromMinutes(15))
            throw new TimeoutException($"training job {job.JobId} read no batch in 15 minutes (state {job.State}).");
    }
    if (job.State is JobState.Queued or JobState.Running)
        await training.CancelJobAsync(new JobRef { JobId = job.JobId }, BenchPlatform.Auth, cancellationToken: ct);
    while (job.State is JobState.Queued or JobState.Running)
    {
        await Task.Delay(TimeSpan.FromMilliseconds(250), ct);
        job = await training.GetJobAsync(new JobRef { JobId = job.JobId }, cancellationToken: ct);
    }
    var last = job.AttemptHistory.LastOrDefault();
    double? seconds = last is { StartedAt.Length: > 0, FirstBatchAt.Length: > 0 }
        ? (Instant(last.FirstBatchAt) - Instant(last.StartedAt)).TotalSeconds
        : null;
    var polled = runningAt is { } r && batchSeenAt is { } b ? $"{b - r:F1} s" : "n/a";
    Console.WriteLine($"{trainId,-21}: started_at to first_batch_at {Seconds(seconds)} s (polled RUNNING to progress {polled}); " +
        $"shards downloaded {last?.DatasetShardsDownloaded ?? 0} ({(last?.DatasetBytesDownloaded ?? 0) / 1e6:F1} MB), " +
        $"cached {last?.DatasetShardsCached ?? 0}; worker {last?.Worker}; job ended {job.State}");
    return new FirstBatch(seconds, polled, last is { DatasetReadyAt.Length: > 0 }, last?.DatasetShardsDownloaded ?? 0,
        last?.DatasetShardsCached ?? 0, last?.Worker ?? "");
}

async Task RssAsync(SyntheticSet set)
{
    await using var platform = await StartPlatformAsync(normStatsWorkers: 1);
    // This process plays the CLI: only the upload and the job's watch count, not the earlier sections, whose memory an
    // aggressive collection gives back before the peak is reset.
    GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
    await using var sampler = PeakRss.Start(platform.RunTag);
    var (dataset, _) = await UploadAsync(platform, set, $"bench-large-{set.Images}", timed: false);
    var clock = Stopwatch.StartNew();
    var job = await platform.NormStats.ComputeAsync(new ComputeNormRequest
    {
        Dataset = dataset, Options = new NormOptions { Resize = NormResize },
    }, BenchPlatform.Auth, cancellationToken: ct);
    while (job.State is not (NormJobState.Succeeded or NormJobState.Failed))
    {
        await Task.Delay(TimeSpan.FromSeconds(1), ct);
        job = await platform.NormStats.GetAsync(new JobRef { JobId = job.JobId }, cancellationToken: ct);
    }
    var seconds = clock.Elapsed.TotalSeconds;
    Console.WriteLine($"large-set norm job   : {job.State} in {seconds:F1} s ({Rate(set.Images, seconds)} img/s)");
    foreach (var (process, commandLine, bytes) in await sampler.StopAsync())
    {
        Console.WriteLine($"peak RSS {process,-32}: {bytes / 1e6,8:F0} MB  ({commandLine[..Math.Min(commandLine.Length, 150)]})");
        Add("rss", $"peak RSS {process}", $"{bytes / 1e6:F0} MB", "1 GB", Ratio(bytes / 1e9), "< 1x");
    }
}

void Add(string section, string figure, string measured, string reference, string ratio, string goal)
{
    results.Add([section, figure, measured, reference, ratio, goal]);
    Console.WriteLine($"  => {figure}: {measured} vs {reference} = {ratio} (goal {goal})");
}

void WriteTable()
{
    if (results.Count == 0)
        return;
    var lines = new List<string>
    {
        string.Create(CultureInfo.InvariantCulture, $"Datasets at lab scale, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, " +
            $"{images} images (large set {large}), {Environment.ProcessorCount} cores"),
        "",
        "| section | figure | measured | reference | ratio | goal |",
        "|---|---|---|---|---|---|",
    };
    lines.AddRange(results.OrderBy(r => Array.IndexOf(allSections, r[0])).Select(r => $"| {string.Join(" | ", r)} |"));
    Console.WriteLine();
    foreach (var line in lines)
        Console.WriteLine(line);
    File.WriteAllLines(Path.Combine(work, "results.md"), lines);
    Console.WriteLine($"(also in {Path.Combine(work, "results.md")})");
}

static string Rate(int count, double seconds) => (count / seconds).ToString("F0", CultureInfo.InvariantCulture);

static string Ratio(double ratio) => ratio.ToString("0.00", CultureInfo.InvariantCulture) + "x";

static string Seconds(double? seconds) => seconds?.ToString("F2", CultureInfo.InvariantCulture) ?? "n/a";

static DateTimeOffset Instant(string iso) => DateTimeOffset.Parse(iso, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);

/// <summary>A training attempt's time to its first batch; <c>Polled</c> is what polling GetJob saw (RUNNING to progress).</summary>
internal sealed record FirstBatch(
    double? Seconds, string Polled, bool DatasetRecorded, int ShardsDownloaded, int ShardsCached, string Worker)
{
    /// <summary>The recorded time, or n/a with the polled one when the attempt does not record first_batch_at.</summary>
    public string Measured => Seconds is { } s
        ? s.ToString("F2", CultureInfo.InvariantCulture)
        : $"n/a (polled RUNNING to progress: {Polled})";
}
