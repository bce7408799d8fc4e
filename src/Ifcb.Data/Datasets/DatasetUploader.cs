using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using Azure;
using Ifcb.Data.Datasets.Shards;
using Ifcb.Platform;

namespace Ifcb.Data.Datasets;

/// <summary>
/// Uploads a dataset as a new generation (see <see cref="BlobDatasetStore"/>): packs the images, in canonical order,
/// into shards (<see cref="ShardWriter"/>) while earlier shards upload, stores only the shards not stored yet, renews the
/// ones it reuses, writes the generation's manifest and makes it current with <c>If-Match</c>.
/// </summary>
/// <remarks>
/// Shard boundaries depend on the images, not on where the upload starts: a shard ends after an image once it holds at
/// least <see cref="DatasetStoreOptions.ShardBytes"/> and the image's name hashes to one of
/// <see cref="DatasetStoreOptions.ShardBoundaryOneIn"/> buckets (or, whatever the names, once it holds 4× that). So
/// after a change the following shards soon end at the same images as before and have the same bytes: a re-upload
/// sends the shards that hold changed images, and finds the others stored.
/// </remarks>
internal sealed class DatasetUploader(
    DatasetStoreOptions options, DatasetManifests manifests, DatasetShards shards, DatasetGarbageCollector collector)
{
    private const int MaxRenewalPasses = 3;
    private const int MaxShardFactor = 4;

    private sealed record PackedShard(int Sequence, ShardIndex Index, string TarPath, int FirstFile, int EndFile);

    /// <summary>
    /// Uploads <paramref name="files"/> (checked names, local paths) as dataset <paramref name="name"/>, based on
    /// <paramref name="head"/>. <paramref name="filesDone"/> counts the files whose shard is stored.
    /// </summary>
    /// <exception cref="IfcbException">
    /// Aborted: the dataset is no longer as <paramref name="head"/> found it; Unavailable: storage too slow.
    /// </exception>
    /// <exception cref="InvalidDataException">Two files with one class/file name, or a local file changed meanwhile.</exception>
    public async Task<DatasetUploadResult> UploadAsync(string name, IReadOnlyList<(string Class, string File, string Path)> files,
        DatasetHead head, int parallelism, IProgress<int>? filesDone, CancellationToken cancellationToken)
    {
        var ordered = files.OrderBy(f => f.Class, StringComparer.Ordinal).ThenBy(f => f.File, StringComparer.Ordinal).ToList();
        var renewedAt = DateTimeOffset.UtcNow;
        var packed = new ConcurrentDictionary<int, PackedShard>();
        var classCounts = new SortedDictionary<string, int>(StringComparer.Ordinal);
        long totalBytes = 0;
        string fingerprint;
        int uploaded = 0, present = 0, shardsUploaded = 0, shardsPresent = 0, done = 0;

        var temp = Directory.CreateTempSubdirectory("ifcb-shards-");
        try
        {
            using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var channel = Channel.CreateBounded<PackedShard>(2);
            var pack = Task.Run(() =>
            {
                try
                {
                    using var listing = new DatasetFingerprint();
                    Pack(ordered, 0, ordered.Count, temp.FullName, (file, shardIndex) =>
                    {
                        listing.Add(file);
                        classCounts[file.Class] = classCounts.GetValueOrDefault(file.Class) + 1;
                        totalBytes += file.Size;
                    }, shard => channel.Writer.WriteAsync(shard, failed.Token).AsTask().GetAwaiter().GetResult(), failed.Token);
                    return listing.Complete();
                }
                finally
                {
                    channel.Writer.TryComplete();
                }
            }, failed.Token);
            var store = Enumerable.Range(0, Math.Clamp(parallelism / 2, 1, 4)).Select(_ => Task.Run(async () =>
            {
                await foreach (var shard in channel.Reader.ReadAllAsync(failed.Token).ConfigureAwait(false))
                {
                    var members = shard.Index.Members.Count;
                    if (await shards.RenewAsync(name, shard.Index.Shard, failed.Token).ConfigureAwait(false))
                    {
                        Interlocked.Add(ref present, members);
                        Interlocked.Increment(ref shardsPresent);
                    }
                    else
                    {
                        await shards.PutAsync(name, shard.Index, shard.TarPath, failed.Token).ConfigureAwait(false);
                        Interlocked.Add(ref uploaded, members);
                        Interlocked.Increment(ref shardsUploaded);
                    }
                    File.Delete(shard.TarPath);
                    packed[shard.Sequence] = shard with { TarPath = "" };
                    filesDone?.Report(Interlocked.Add(ref done, members));
                }
            }, failed.Token)).ToList();
            try
            {
                fingerprint = await pack.ConfigureAwait(false);
                await Task.WhenAll(store).ConfigureAwait(false);
            }
            catch
            {
                await failed.CancelAsync().ConfigureAwait(false);
                await Task.WhenAll([pack, .. store]).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
                throw;
            }

            // The first shards were renewed (or stored) when the upload began; if that is long ago, renew them all again
            // so that none can reach the collector's age before the flip below, and store again any a collector took.
            for (var pass = 1; DateTimeOffset.UtcNow - renewedAt > options.GarbageGrace / 2; pass++)
            {
                if (pass > MaxRenewalPasses)
                    throw IfcbException.Unavailable(
                        $"Renewing the {packed.Count} stored shards of this upload took longer than half the " +
                        $"{options.GraceText} grace period {MaxRenewalPasses} times; storage is too slow right now. Upload again later.");
                renewedAt = DateTimeOffset.UtcNow;
                foreach (var shard in packed.Values.OrderBy(s => s.Sequence))
                {
                    if (!await shards.RenewAsync(name, shard.Index.Shard, cancellationToken).ConfigureAwait(false))
                        await RestoreAsync(name, ordered, shard, temp.FullName, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            temp.Delete(recursive: true);
        }

        var stored = StoredManifest.ForShards(name, fingerprint, classCounts, totalBytes,
            [.. packed.Values.OrderBy(s => s.Sequence).Select(s => new StoredShard(s.Index.Shard, s.Index.Bytes, s.Index.Members.Count))]);
        var generation = await CommitAsync(name, stored, head, cancellationToken).ConfigureAwait(false);
        await collector.CollectAfterCommitAsync(name, cancellationToken).ConfigureAwait(false);
        var description = (stored with { Generation = generation }).Describe();
        return new DatasetUploadResult(description, uploaded, present) { ShardsUploaded = shardsUploaded, ShardsPresent = shardsPresent };
    }

    /// <summary>
    /// Writes files [<paramref name="first"/>, <paramref name="end"/>) of <paramref name="ordered"/> into shards under
    /// <paramref name="folder"/>, calling <paramref name="added"/> for each file and <paramref name="completed"/> for each shard.
    /// </summary>
    private void Pack(List<(string Class, string File, string Path)> ordered, int first, int end, string folder,
        Action<DatasetFile, int> added, Action<PackedShard> completed, CancellationToken cancellationToken)
    {
        var sequence = 0;
        var start = first;
        FileStream? output = null;
        ShardWriter? writer = null;
        try
        {
            for (var i = first; i < end; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var (className, fileName, path) = ordered[i];
                if (i > first && ordered[i - 1].Class == className && ordered[i - 1].File == fileName)
                    throw new InvalidDataException($"Two files would both be {className}/{fileName}: {ordered[i - 1].Path} and {path}.");
                if (writer is null)
                {
                    output = new FileStream(Path.Combine(folder, $"{first}-{sequence}.tar"), FileMode.CreateNew, FileAccess.Write,
                        FileShare.None, 1 << 20);
                    writer = new ShardWriter(output);
                }
                var content = File.ReadAllBytes(path);
                var sha = writer.Add(className, fileName, content);
                added(new DatasetFile(className, fileName, content.LongLength, sha), sequence);
                if (i == end - 1 || EndsShard(writer.Length, className, fileName))
                {
                    var index = writer.Complete();
                    writer.Dispose();
                    writer = null;
                    var tarPath = output!.Name;
                    output.Dispose();
                    output = null;
                    completed(new PackedShard(sequence++, index, tarPath, start, i + 1));
                    start = i + 1;
                }
            }
        }
        finally
        {
            writer?.Dispose();
            output?.Dispose();
        }
    }

    /// <summary>Whether a shard of <paramref name="length"/> bytes ends after this image (see the class remarks).</summary>
    private bool EndsShard(long length, string className, string fileName)
    {
        if (length >= MaxShardFactor * options.ShardBytes)
            return true;
        if (length < options.ShardBytes)
            return false;
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes($"{className}/{fileName}"), hash);
        return BitConverter.ToUInt32(hash) % (uint)options.ShardBoundaryOneIn == 0;
    }

    // A collector took a shard of this upload (it ran longer than the grace period): pack it again from the same files.
    private async Task RestoreAsync(string name, List<(string Class, string File, string Path)> ordered, PackedShard shard, string folder,
        CancellationToken cancellationToken)
    {
        PackedShard? again = null;
        Pack(ordered, shard.FirstFile, shard.EndFile, folder, (_, _) => { }, s => again = s, cancellationToken);
        try
        {
            if (again is null || again.Index.Shard != shard.Index.Shard)
                throw new InvalidDataException(
                    $"The files of {shard.Index.Members[0].Key} to {shard.Index.Members[^1].Key} changed while they were being uploaded; upload again.");
            await shards.PutAsync(name, again.Index, again.TarPath, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (again is not null)
                File.Delete(again.TarPath);
        }
    }

    // Writes the generation, then makes it current if the dataset is still as the upload found it; returns its id.
    private async Task<string> CommitAsync(string name, StoredManifest manifest, DatasetHead head, CancellationToken cancellationToken)
    {
        var now = DateTimeOffset.UtcNow;
        var generation = NewGenerationId(now);
        var retired = head.Stored?.RetiredAfterReplacing(now, options.GarbageGrace) ?? [];
        var stored = manifest.AsGeneration(generation, now, retired);
        var generationBlob = await manifests.CreateGenerationAsync(name, generation, stored, cancellationToken).ConfigureAwait(false);
        try
        {
            await manifests.ReplaceAsync(name, stored, head.ETag, cancellationToken).ConfigureAwait(false);
            return generation;
        }
        catch (RequestFailedException e) when (e.Status is 404 or 409 or 412)
        {
            // Left behind, it would be collected later.
            await collector.TryDeleteAsync(generationBlob, etag: null, CancellationToken.None).ConfigureAwait(false);
            throw new IfcbException(ErrorKind.Aborted,
                $"Dataset {name} changed while this upload was running: another upload of dataset {name} finished first " +
                "(or it was deleted), so this upload did not replace it. Check `ifcb dataset show`, then upload again to make " +
                "these files the dataset.", e);
        }
    }

    private static string NewGenerationId(DateTimeOffset now) =>
        $"{now.UtcDateTime:yyyyMMdd'T'HHmmssfff'Z'}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";
}
