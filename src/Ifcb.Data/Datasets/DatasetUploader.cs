using System.Collections.Concurrent;
using System.Security.Cryptography;
using Azure;
using Ifcb.Platform;

namespace Ifcb.Data.Datasets;

/// <summary>
/// Uploads a dataset as a new generation (see <see cref="BlobDatasetStore"/>): stores the content not stored yet,
/// renews what it reuses, writes the generation's manifest and makes it current with <c>If-Match</c>.
/// </summary>
internal sealed class DatasetUploader(
    DatasetStoreOptions options, DatasetManifests manifests, DatasetImages images, DatasetGarbageCollector collector)
{
    private const int MaxRenewalPasses = 3;

    /// <summary>
    /// Uploads <paramref name="files"/> (checked names, local paths) as dataset <paramref name="name"/>, based on
    /// <paramref name="head"/>.
    /// </summary>
    /// <exception cref="IfcbException">
    /// Aborted: the dataset is no longer as <paramref name="head"/> found it; Unavailable: storage too slow.
    /// </exception>
    public async Task<DatasetUploadResult> UploadAsync(string name, IReadOnlyList<(string Class, string File, string Path)> files,
        DatasetHead head, int parallelism, IProgress<int>? filesDone, CancellationToken cancellationToken)
    {
        var renewedAt = DateTimeOffset.UtcNow;
        var objects = new ConcurrentDictionary<string, Lazy<Task<bool>>>(StringComparer.Ordinal);
        var pathOfObject = new ConcurrentDictionary<string, string>(StringComparer.Ordinal);
        var entries = new ConcurrentBag<DatasetFile>();
        var uploaded = 0;
        var present = 0;
        var done = 0;
        await Parallel.ForEachAsync(files, DatasetImages.Parallelism(parallelism, cancellationToken),
            async (item, token) =>
            {
                var bytes = await File.ReadAllBytesAsync(item.Path, token).ConfigureAwait(false);
                var hash = DatasetImages.Sha256(bytes);
                pathOfObject.TryAdd(hash, item.Path);
                var put = objects.GetOrAdd(hash, h => new Lazy<Task<bool>>(() => images.PutAsync(name, h, bytes, token)));
                var existed = await put.Value.ConfigureAwait(false);
                if (existed)
                    Interlocked.Increment(ref present);
                else
                    Interlocked.Increment(ref uploaded);
                entries.Add(new DatasetFile(item.Class, item.File, bytes.LongLength, hash));
                filesDone?.Report(Interlocked.Increment(ref done));
            }).ConfigureAwait(false);

        // The first objects were renewed when the upload began; if that is long ago, renew them all again so that none
        // can reach the collector's age before the flip below. A renewal pass must itself be quick against the grace period.
        for (var pass = 1; DateTimeOffset.UtcNow - renewedAt > options.GarbageGrace / 2; pass++)
        {
            if (pass > MaxRenewalPasses)
                throw IfcbException.Unavailable(
                    $"Renewing the {pathOfObject.Count} stored images of this upload took longer than half the " +
                    $"{options.GraceText} grace period {MaxRenewalPasses} times; storage is too slow right now. Upload again later.");
            renewedAt = DateTimeOffset.UtcNow;
            await images.RenewAllAsync(name, pathOfObject, parallelism, cancellationToken).ConfigureAwait(false);
        }

        var manifest = DatasetManifest.Create(name, entries);
        var generation = await CommitAsync(name, manifest, head, cancellationToken).ConfigureAwait(false);
        var kept = manifest.Files.Select(f => (f.Class, f.File)).ToHashSet();
        var removed = head.Stored is { Deleted: false } previous ? previous.Files.Count(f => !kept.Contains((f.Class, f.File))) : 0;
        await collector.CollectAfterCommitAsync(name, cancellationToken).ConfigureAwait(false);
        return new DatasetUploadResult(manifest with { Generation = generation }, uploaded, present, removed);
    }

    // Writes the generation, then makes it current if the dataset is still as the upload found it; returns its id.
    private async Task<string> CommitAsync(string name, DatasetManifest manifest, DatasetHead head, CancellationToken cancellationToken)
    {
        var now = DateTimeOffset.UtcNow;
        var generation = NewGenerationId(now);
        var retired = head.Stored?.RetiredAfterReplacing(now, options.GarbageGrace) ?? [];
        var stored = StoredManifest.ForGeneration(manifest, generation, now, retired);
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
