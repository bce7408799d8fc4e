using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Security.Cryptography;
using Ifcb.Contracts;
using Ifcb.Platform.Checkpoints;
using Ifcb.Registry.Engine;
using Ifcb.Testing;

// Registry engine against Azurite on loopback, each measurement next to the raw blob operation it wraps:
//   lookup latency (GetVersion by number / by alias vs a raw GET of version.json) at several concurrencies,
//   the named API key check (ApiKeys.VerifyAsync vs a raw GET of the key's record),
//   registration throughput (vs raw uploads of the same bytes), checkpoint download MB/s (vs a raw blob download),
//   search with a filter and ordering over --models × --versions (index vs reading every version document; SearchBench.cs).
// Usage: dotnet run -c Release --project bench/Ifcb.Registry.Bench -- [--seconds 2] [--checkpoint-mb 64]
//        [--registrations 40] [--downloads 5] [--concurrency 1,16,64] [--sections lookup,keys,registration,download,search]
//        [--models 200] [--versions 50] [--search-runs 200] [--scan-runs 10]
var settings = BenchSettings.Parse(args);
Console.WriteLine($"Settings: {settings}");

await using var azurite = await AzuriteInstance.StartAsync();
if (settings.Sections.Contains("search"))
{
    Console.WriteLine();
    await SearchBench.RunAsync(await azurite.CreateContainerAsync("search"), settings.Models, settings.VersionsPerModel,
        settings.SearchRuns, settings.ScanRuns);
}

var container = await azurite.CreateContainerAsync("bench");
var registry = new ModelRegistry(container);
var unverified = new ModelRegistry(container, new RegistryOptions { VerifyDownloads = false });
const string Model = "bench-model";
await registry.CreateModelAsync(Model, "bench");

// The registry reads every checkpoint's hparams back, so the bench uploads real checkpoint zips (random weights).
var checkpointBytes = CheckpointZip(settings.CheckpointMegabytes * 1024 * 1024);
var checkpointSha = Convert.ToHexStringLower(SHA256.HashData(checkpointBytes));
var registered = (await registry.RegisterVersionAsync(Model,
    new NewModelVersion { Arch = "resnet18", Sha256 = checkpointSha, SizeBytes = checkpointBytes.Length, Classes = ["a", "b"] },
    new MemoryStream(checkpointBytes), "bench")).Version;
await registry.SetAliasAsync(Model, "production", registered.Version, "bench");
var versionDocument = container.GetBlobClient($"models/{Model}/versions/{registered.Version:D7}/version.json");
var checkpointBlob = container.GetBlobClient(registered.CheckpointBlob);

Console.WriteLine();
if (settings.Sections.Contains("lookup"))
    Console.WriteLine("Lookup latency (ms)         conc    p50     p99   ops/s   raw p50  raw p99  p50 ratio (registry/raw)");
foreach (var concurrency in settings.Sections.Contains("lookup") ? settings.Concurrency : [])
{
    var raw = await Measure(concurrency, settings.Duration, async () => await versionDocument.DownloadContentAsync());
    var byNumber = await Measure(concurrency, settings.Duration,
        async () => await registry.GetVersionAsync(ModelRef.ToVersion(Model, registered.Version)));
    var byAlias = await Measure(concurrency, settings.Duration,
        async () => await registry.GetVersionAsync(ModelRef.ToAlias(Model, "production")));
    Report("GetVersion(name/N)", concurrency, byNumber, raw);
    Report("GetVersion(name@alias)", concurrency, byAlias, raw);
}

if (settings.Sections.Contains("keys"))
{
    // What the key check adds to a call made with a named key: ApiKeys.VerifyAsync is one GET of keys/{name}.json
    // (no cache, so a revoke is seen at once) plus a SHA-256 and a constant-time comparison.
    var keys = new ApiKeys(container);
    var key = (await keys.CreateAsync("bench-key", Ifcb.Platform.ApiRole.Writer, "bench")).Key;
    var keyDocument = container.GetBlobClient("keys/bench-key.json");
    Console.WriteLine();
    Console.WriteLine("Named key check (ms)        conc    p50     p99   ops/s   raw p50  raw p99  p50 ratio (verify/raw GET)");
    foreach (var concurrency in settings.Concurrency)
    {
        var raw = await Measure(concurrency, settings.Duration, async () => await keyDocument.DownloadContentAsync());
        var verify = await Measure(concurrency, settings.Duration, async () => await keys.VerifyAsync(key));
        Report("VerifyAsync(named key)", concurrency, verify, raw);
    }
}

Console.WriteLine();
var small = CheckpointZip(64 * 1024);
var smallSha = Convert.ToHexStringLower(SHA256.HashData(small));
foreach (var concurrency in settings.Sections.Contains("registration") ? new[] { 1, 16 } : [])
{
    var rawUploads = await Throughput(settings.Registrations, concurrency, async i =>
        await container.GetBlobClient($"raw/{concurrency}/{i}").UploadAsync(new BinaryData(small)));
    var registrations = await Throughput(settings.Registrations, concurrency, async i =>
        await registry.RegisterVersionAsync(Model, new NewModelVersion { Arch = "resnet18", Sha256 = smallSha, SizeBytes = small.Length },
            new MemoryStream(small), "bench"));
    Console.WriteLine(
        $"Registration (64 KiB) conc {concurrency,2}: {registrations:F1} versions/s; raw 64 KiB upload {rawUploads:F1}/s; " +
        $"ratio {registrations / rawUploads:F2} (a registration is ~18 storage requests incl. reading hparams back and " +
        "keeping the search index, an upload 1)");
}

Console.WriteLine();
if (!settings.Sections.Contains("download"))
    return;

// One unmeasured pass warms connections and JIT; the order rotates each round so neither side always goes first.
await DownloadRate(async () => (await checkpointBlob.DownloadStreamingAsync()).Value.Content);
var rawMBps = new List<double>();
var registryMBps = new List<double>();
var unverifiedMBps = new List<double>();
Func<Task>[] downloads =
[
    async () => rawMBps.Add(await DownloadRate(async () => (await checkpointBlob.DownloadStreamingAsync()).Value.Content)),
    async () => registryMBps.Add(await DownloadRate(async () =>
        (await registry.OpenCheckpointAsync(ModelRef.ToAlias(Model, "production"))).Content)),
    async () => unverifiedMBps.Add(await DownloadRate(async () =>
        (await unverified.OpenCheckpointAsync(ModelRef.ToAlias(Model, "production"))).Content)),
];
for (var round = 0; round < settings.Downloads; round++)
{
    for (var i = 0; i < downloads.Length; i++)
    {
        await downloads[(round + i) % downloads.Length]();
    }
}

var rawMedian = Median(rawMBps);
Console.WriteLine($"Checkpoint download ({settings.CheckpointMegabytes} MiB, median of {settings.Downloads}):");
Console.WriteLine($"  raw blob download            {rawMedian,8:F1} MB/s");
Console.WriteLine($"  registry (sha256 verified)   {Median(registryMBps),8:F1} MB/s   " +
    $"ratio {Median(registryMBps) / rawMedian:F2} (goal >= 0.80)");
Console.WriteLine($"  registry (verification off)  {Median(unverifiedMBps),8:F1} MB/s   ratio {Median(unverifiedMBps) / rawMedian:F2}");

static byte[] CheckpointZip(int weightBytes)
{
    var hparams = new CheckpointHeader { Arch = "resnet18", Classes = ["a", "b"], Resize = 224, Created = DateTimeOffset.UnixEpoch };
    using var buffer = new MemoryStream();
    using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
    {
        using (var entry = zip.CreateEntry(CheckpointHeader.HparamsEntry).Open())
        {
            entry.Write(hparams.ToJson());
        }

        using var weights = zip.CreateEntry(CheckpointHeader.WeightsEntry, CompressionLevel.NoCompression).Open();
        weights.Write(RandomNumberGenerator.GetBytes(weightBytes));
    }

    return buffer.ToArray();
}

static async Task<double[]> Measure(int concurrency, TimeSpan duration, Func<Task> operation)
{
    await operation(); // warm connections and JIT outside the measurement
    var deadline = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
    var perWorker = await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
    {
        var latencies = new List<double>();
        while (Stopwatch.GetTimestamp() < deadline)
        {
            var start = Stopwatch.GetTimestamp();
            await operation();
            latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }

        return latencies;
    })));
    var all = perWorker.SelectMany(l => l).Order().ToArray();
    return all;
}

static void Report(string what, int concurrency, double[] registry, double[] raw)
{
    var seconds = registry.Sum() / concurrency / 1000;
    Console.WriteLine(
        $"{what,-26} {concurrency,4} {Percentile(registry, 0.50),7:F2} {Percentile(registry, 0.99),7:F2} {registry.Length / seconds,7:F0}" +
        $"   {Percentile(raw, 0.50),7:F2}  {Percentile(raw, 0.99),7:F2}  {Percentile(registry, 0.50) / Percentile(raw, 0.50),5:F2}");
}

static double Percentile(double[] sorted, double p) =>
    sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

static async Task<double> Throughput(int count, int concurrency, Func<int, Task> operation)
{
    var next = -1;
    var start = Stopwatch.GetTimestamp();
    await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
    {
        for (var i = Interlocked.Increment(ref next); i < count; i = Interlocked.Increment(ref next))
        {
            await operation(i);
        }
    })));
    return count / Stopwatch.GetElapsedTime(start).TotalSeconds;
}

static async Task<double> DownloadRate(Func<Task<Stream>> open)
{
    var start = Stopwatch.GetTimestamp();
    await using var stream = await open();
    var buffer = new byte[1 << 20];
    long total = 0;
    int read;
    while ((read = await stream.ReadAsync(buffer)) > 0)
    {
        total += read;
    }

    return total / 1e6 / Stopwatch.GetElapsedTime(start).TotalSeconds;
}

static double Median(List<double> values)
{
    var sorted = values.Order().ToArray();
    return sorted[sorted.Length / 2];
}

internal sealed record BenchSettings(TimeSpan Duration, int CheckpointMegabytes, int Registrations, int Downloads, int[] Concurrency)
{
    public string[] Sections { get; init; } = ["lookup", "keys", "registration", "download", "search"];

    public int Models { get; init; } = 200;

    public int VersionsPerModel { get; init; } = 50;

    public int SearchRuns { get; init; } = 200;

    public int ScanRuns { get; init; } = 10;

    public static BenchSettings Parse(string[] args)
    {
        var settings = new BenchSettings(TimeSpan.FromSeconds(2), 64, 40, 5, [1, 16, 64]);
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            var value = args[i + 1];
            settings = args[i] switch
            {
                "--seconds" => settings with { Duration = TimeSpan.FromSeconds(double.Parse(value, CultureInfo.InvariantCulture)) },
                "--checkpoint-mb" => settings with { CheckpointMegabytes = int.Parse(value, CultureInfo.InvariantCulture) },
                "--registrations" => settings with { Registrations = int.Parse(value, CultureInfo.InvariantCulture) },
                "--downloads" => settings with { Downloads = int.Parse(value, CultureInfo.InvariantCulture) },
                "--concurrency" =>
                    settings with { Concurrency = [.. value.Split(',').Select(v => int.Parse(v, CultureInfo.InvariantCulture))] },
                "--sections" => settings with { Sections = value.Split(',') },
                "--models" => settings with { Models = int.Parse(value, CultureInfo.InvariantCulture) },
                "--versions" => settings with { VersionsPerModel = int.Parse(value, CultureInfo.InvariantCulture) },
                "--search-runs" => settings with { SearchRuns = int.Parse(value, CultureInfo.InvariantCulture) },
                "--scan-runs" => settings with { ScanRuns = int.Parse(value, CultureInfo.InvariantCulture) },
                _ => throw new ArgumentException($"Unknown option {args[i]}; see the usage comment at the top of Program.cs."),
            };
        }

        return settings;
    }

    public override string ToString() =>
        $"{Duration.TotalSeconds}s per latency cell, concurrency {string.Join(",", Concurrency)}, {CheckpointMegabytes} MiB checkpoint, " +
        $"{Registrations} registrations per run, {Downloads} download rounds; sections {string.Join(",", Sections)}; " +
        $"search over {Models} models × {VersionsPerModel} versions ({SearchRuns} index runs, {ScanRuns} scan runs)";
}
