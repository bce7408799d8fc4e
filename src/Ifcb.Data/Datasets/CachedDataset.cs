using Ifcb.Data.Datasets.Shards;
using Ifcb.Data.Imaging;
using Ifcb.Data.Loading;
using Ifcb.Platform.Jobs;

namespace Ifcb.Data.Datasets;

/// <summary>
/// A sharded dataset whose shards are all in a worker's <see cref="ShardCache"/>, pinned there until this is disposed:
/// its listing, and an <see cref="IImageSource"/> that reads each image from its cached shard (keys are
/// <c>class/file</c>, as in <see cref="ImagesPerClass"/>). Reads are positional, so the loader's threads share it.
/// </summary>
public sealed class CachedDataset : IImageSource, IDisposable
{
    private readonly Dictionary<string, (ShardLease Lease, long Offset, int Size)> _images;
    private readonly IReadOnlyList<ShardLease> _leases;

    internal CachedDataset(DatasetManifest manifest, IReadOnlyList<ShardLease> leases, DateTimeOffset readyAt, int? convertedFromFormat)
    {
        Manifest = manifest;
        _leases = leases;
        var bySha = leases.ToDictionary(l => l.Sha256, StringComparer.Ordinal);
        _images = new Dictionary<string, (ShardLease, long, int)>(manifest.Files.Count, StringComparer.Ordinal);
        foreach (var file in manifest.Files)
            _images[file.Key] = (bySha[file.Shard!], file.Offset!.Value, checked((int)file.Size));
        ShardsDownloaded = leases.Count(l => l.Downloaded);
        BytesDownloaded = leases.Where(l => l.Downloaded).Sum(l => l.Length);
        ShardsCached = leases.Count - ShardsDownloaded;
        ReadyAt = readyAt;
        ConvertedFromFormat = convertedFromFormat;
        ImagesPerClass = manifest.Files.GroupBy(f => f.Class, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => (IReadOnlyList<string>)[.. g.Select(f => f.Key)], StringComparer.Ordinal);
    }

    public DatasetManifest Manifest { get; }

    /// <summary>Image keys (<c>class/file</c>) per class, for <see cref="DatasetSpec.FromImagesPerClass"/>.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> ImagesPerClass { get; }

    /// <summary>
    /// Shards fetched from storage for this open, including any another job on this worker was fetching at the same
    /// time (this open waited for that one download; the cache's counters count it once).
    /// </summary>
    public int ShardsDownloaded { get; }

    public long BytesDownloaded { get; }

    /// <summary>Shards the worker's cache already held.</summary>
    public int ShardsCached { get; }

    /// <summary>When every shard was local.</summary>
    public DateTimeOffset ReadyAt { get; }

    /// <summary>What this open fetched, as a job attempt records it.</summary>
    public DatasetFetch Fetch => new(ShardsDownloaded, BytesDownloaded, ShardsCached, ReadyAt);

    /// <summary>The manifest format this open converted the dataset from (1 or 2), once; null when it was sharded already.</summary>
    public int? ConvertedFromFormat { get; }

    /// <summary>The encoded bytes of one image.</summary>
    /// <exception cref="FileNotFoundException">No image with that key.</exception>
    public byte[] ReadBytes(string key)
    {
        if (!_images.TryGetValue(key, out var image))
            throw new FileNotFoundException($"Image {key} is not in dataset {Manifest.Name}.", key);
        var bytes = new byte[image.Size];
        image.Lease.Read(image.Offset, bytes);
        return bytes;
    }

    /// <summary>
    /// Writes every image to <c>{folder}/{class}/{file}</c>, for readers that take a class-folder tree (RUN over a
    /// dataset, evaluation); returns the folder.
    /// </summary>
    public string ExtractTo(string folder, CancellationToken cancellationToken = default)
    {
        foreach (var (className, keys) in ImagesPerClass)
        {
            var classFolder = Path.Combine(folder, className);
            Directory.CreateDirectory(classFolder);
            foreach (var key in keys)
            {
                cancellationToken.ThrowIfCancellationRequested();
                File.WriteAllBytes(Path.Combine(classFolder, key[(className.Length + 1)..]), ReadBytes(key));
            }
        }
        return folder;
    }

    public DecodedImage Load(string path) => ImageDecoder.Decode(ReadBytes(path), $"{Manifest.Name}/{path}");

    public void Dispose()
    {
        foreach (var lease in _leases)
            lease.Dispose();
    }
}
