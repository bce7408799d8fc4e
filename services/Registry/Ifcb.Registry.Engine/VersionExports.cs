using System.Security.Cryptography;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Ifcb.Contracts;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine;

/// <summary>What to export a version as.</summary>
/// <param name="StaticBatch">A fixed batch size declared in the graph, or null for a dynamic batch dimension.</param>
public sealed record ExportRequest(int? StaticBatch)
{
    /// <summary>The one export format there is.</summary>
    public const string Onnx = "onnx";

    /// <summary>The cached file's name inside the version's <c>exports/</c> folder.</summary>
    public string FileName => StaticBatch is { } batch ? $"model.batch{batch}.onnx" : "model.onnx";
}

/// <summary>
/// Turns a checkpoint into an export: reads the whole (verified, seekable) checkpoint and writes the artefact. Runs on a
/// thread-pool thread; may block.
/// </summary>
public delegate void VersionExporter(ModelVersion version, Stream checkpoint, Stream destination, ExportRequest request);

/// <summary>An export being read: the version it belongs to, its bytes (verified as they are read) and whether it was cached.</summary>
public sealed class VersionExport(ModelVersion version, Stream content, long sizeBytes, string sha256, bool cached)
    : IAsyncDisposable
{
    public ModelVersion Version { get; } = version;

    public Stream Content { get; } = content;

    public long SizeBytes { get; } = sizeBytes;

    /// <summary>Hex sha256 of the export's bytes.</summary>
    public string Sha256 { get; } = sha256;

    /// <summary>True when the bytes came from the blob an earlier export left; false when exported for this call.</summary>
    public bool Cached { get; } = cached;

    public ValueTask DisposeAsync() => Content.DisposeAsync();
}

/// <summary>
/// A READY version's exports (the ONNX graph), made on first request and cached as blobs beside the checkpoint:
/// <c>models/{name}/versions/{0000003}/exports/model.onnx</c> (<c>model.batch{N}.onnx</c> with a static batch). Each blob
/// records in its metadata the checkpoint sha256 it was made from, the exporter's version and its own sha256 and size; a
/// blob whose checkpoint or exporter differs is made again, so a fixed exporter never serves a stale graph. Deleting the
/// version deletes its exports (<see cref="Deletions"/>).
/// </summary>
/// <remarks>
/// Two replicas asked for the same missing export both make it; the first upload wins (<c>If-None-Match: *</c>) and the
/// other call serves its own identical bytes. Exports in one process run one at a time: a large checkpoint (vgg19,
/// 0.5 GB) is loaded whole into memory to be exported, and the lock bounds that to one at a time.
/// </remarks>
public sealed class VersionExports(BlobContainerClient container, ModelRegistry registry, VersionExporter exporter, string exporterVersion)
{
    private const string CheckpointKey = "checkpoint_sha256";
    private const string ExporterKey = "exporter";
    private const string Sha256Key = "sha256";
    // The graph names its version (metadata_props): a renamed model's copied export names the old one and is made again.
    private const string VersionKey = "version";
    private readonly SemaphoreSlim _exportLock = new(1, 1);

    /// <summary>
    /// Opens the export of <paramref name="reference"/>'s version: the cached blob when there is a current one, else a
    /// new export (stored for the next caller before this one reads it). NotFound/FailedPrecondition as
    /// <see cref="ModelRegistry.OpenCheckpointAsync"/>; InvalidArgument when the exporter refuses the model.
    /// </summary>
    public async Task<VersionExport> OpenAsync(ModelRef reference, ExportRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.StaticBatch is { } batch)
            Limits.Check(batch, 1, Limits.MaxBatch, "static_batch", nameof(Limits.MaxBatch));
        var version = await registry.GetVersionAsync(reference, cancellationToken);
        var blob = container.GetBlobClient(RegistryLayout.Export(version.ModelName, version.Version, request.FileName));
        if (await TryOpenCachedAsync(version, blob, cancellationToken) is { } cached)
            return cached;

        await _exportLock.WaitAsync(cancellationToken);
        try
        {
            // Another call in this process may have made it while this one waited.
            return await TryOpenCachedAsync(version, blob, cancellationToken)
                ?? await ExportAsync(version, blob, request, cancellationToken);
        }
        finally
        {
            _exportLock.Release();
        }
    }

    private static string VersionName(ModelVersion version) =>
        $"{version.ModelName}/{version.Version.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    private async Task<VersionExport?> TryOpenCachedAsync(ModelVersion version, BlobClient blob, CancellationToken cancellationToken)
    {
        BlobDownloadStreamingResult download;
        try
        {
            download = (await blob.DownloadStreamingAsync(cancellationToken: cancellationToken)).Value;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }

        var metadata = download.Details.Metadata;
        if (!metadata.TryGetValue(CheckpointKey, out var checkpoint) || checkpoint != version.Sha256
            || !metadata.TryGetValue(ExporterKey, out var madeBy) || madeBy != exporterVersion
            || !metadata.TryGetValue(VersionKey, out var named) || named != VersionName(version)
            || !metadata.TryGetValue(Sha256Key, out var sha256))
        {
            await download.Content.DisposeAsync();
            return null;
        }

        var size = download.Details.ContentLength;
        return new VersionExport(version, new ChecksumVerifyingStream(download.Content, size, sha256, leaveOpen: false), size, sha256,
            cached: true);
    }

    private async Task<VersionExport> ExportAsync(ModelVersion version, BlobClient blob, ExportRequest request,
        CancellationToken cancellationToken)
    {
        var checkpointFile = Path.GetTempFileName();
        var exportFile = Path.GetTempFileName();
        try
        {
            await using (var download = await registry.OpenCheckpointAsync(ModelRef.ToVersion(version.ModelName, version.Version),
                             cancellationToken))
            await using (var file = File.Create(checkpointFile))
                await download.Content.CopyToAsync(file, cancellationToken);

            await Task.Run(() =>
            {
                using var checkpoint = File.OpenRead(checkpointFile);
                using var destination = File.Create(exportFile);
                exporter(version, checkpoint, destination, request);
            }, cancellationToken);

            string sha256;
            await using (var file = File.OpenRead(exportFile))
                sha256 = Convert.ToHexStringLower(await SHA256.HashDataAsync(file, cancellationToken));
            var size = new FileInfo(exportFile).Length;
            await StoreAsync(version, blob, exportFile, sha256, cancellationToken);

            // Served from the local file, which is deleted when the caller disposes the stream.
            var content = new FileStream(exportFile, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 81920,
                FileOptions.DeleteOnClose | FileOptions.Asynchronous);
            return new VersionExport(version, content, size, sha256, cached: false);
        }
        catch
        {
            File.Delete(exportFile);
            throw;
        }
        finally
        {
            File.Delete(checkpointFile);
        }
    }

    /// <summary>
    /// Stores the export for the next caller: created if absent, replaced if the stored one is stale (guarded by its ETag);
    /// a concurrent writer that got there first wins, and its bytes are the same.
    /// </summary>
    private async Task StoreAsync(ModelVersion version, BlobClient blob, string exportFile, string sha256,
        CancellationToken cancellationToken)
    {
        ETag? stale = null;
        try
        {
            stale = (await blob.GetPropertiesAsync(cancellationToken: cancellationToken)).Value.ETag;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
        }

        var options = new BlobUploadOptions
        {
            Metadata = new Dictionary<string, string>
            {
                [CheckpointKey] = version.Sha256, [ExporterKey] = exporterVersion, [Sha256Key] = sha256,
                [VersionKey] = VersionName(version),
            },
            HttpHeaders = new BlobHttpHeaders { ContentType = "application/octet-stream" },
            Conditions = stale is { } etag
                ? new BlobRequestConditions { IfMatch = etag }
                : new BlobRequestConditions { IfNoneMatch = ETag.All },
        };
        try
        {
            await using var file = File.OpenRead(exportFile);
            await blob.UploadAsync(file, options, cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            // Someone else stored it between the read and this write: theirs stands.
        }
    }
}
