using System.Diagnostics.Metrics;

namespace Ifcb.Data.Datasets.Shards;

/// <summary>OpenTelemetry instruments for the workers' shard caches (meter "Ifcb.Data"), shown in the Aspire dashboard.</summary>
internal static class ShardCacheMetrics
{
    public const string MeterName = "Ifcb.Data";
    private static readonly Meter Meter = new(MeterName);
    public static readonly Counter<long> Downloads =
        Meter.CreateCounter<long>("ifcb.dataset.shard_cache.downloads", unit: "{shard}", description: "Shards downloaded");
    public static readonly Counter<long> Hits =
        Meter.CreateCounter<long>("ifcb.dataset.shard_cache.hits", unit: "{shard}", description: "Acquires served from the cache");
    public static readonly Counter<long> BytesDownloaded =
        Meter.CreateCounter<long>("ifcb.dataset.shard_cache.bytes_downloaded", unit: "By", description: "Shard bytes downloaded");
    public static readonly Counter<long> Evictions =
        Meter.CreateCounter<long>("ifcb.dataset.shard_cache.evictions", unit: "{shard}", description: "Shards evicted");
}
