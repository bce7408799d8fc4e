using System.Diagnostics;
using Ifcb.Data.Datasets;

namespace Ifcb.Training;

/// <summary>How a training or RUN job opens its dataset on this worker: into the shared shard cache, logging what it fetched.</summary>
internal static class DatasetOpening
{
    public static async Task<CachedDataset> OpenForJobAsync(this BlobDatasetStore datasets, string name, WorkerCache cache, ILogger logger,
        string jobId, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var dataset = await datasets.OpenAsync(name, cache.Shards, cancellationToken: cancellationToken);
        if (dataset.ConvertedFromFormat is { } format)
            logger.LogInformation("Dataset {Dataset} was stored in the format {Format} layout (one blob per image); " +
                "job {JobId} converted " +
                "it once into {Shards} shards with the same fingerprint {Fingerprint}.", name, format, jobId,
                dataset.ShardsDownloaded + dataset.ShardsCached, dataset.Manifest.Fingerprint[..12]);
        logger.LogInformation("Job {JobId}: dataset {Dataset} ({Images} images) ready in {Seconds:F1} s: {Downloaded} shards downloaded " +
            "({Bytes} bytes), {Cached} from this worker's cache.", jobId, name, dataset.Manifest.Files.Count,
            Stopwatch.GetElapsedTime(started).TotalSeconds, dataset.ShardsDownloaded, dataset.BytesDownloaded, dataset.ShardsCached);
        return dataset;
    }
}
