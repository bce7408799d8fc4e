using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Sas;
using Ifcb.Platform;
using Ifcb.Platform.Checkpoints;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>
/// The checkpoint bytes in blob storage: uploads them while verifying the declared sha256 and size (or copies them
/// inside storage from another blob, and verifies them there when asked), reads the stored
/// file's hparams.json back, and opens a READY version's checkpoint for a (verified) download.
/// </summary>
internal sealed class CheckpointStore(BlobContainerClient container, RegistryOptions options)
{
    private const int HeaderReadBufferBytes = 64 * 1024;
    private static readonly TimeSpan CopyPollInterval = TimeSpan.FromMilliseconds(250);

    // A SAS is checked against the storage service's clock, not ours.
    private static readonly TimeSpan SasClockSkew = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Streams <paramref name="checkpoint"/> into <paramref name="blobName"/> (which must not exist yet); a sha256 or
    /// size mismatch fails it with DataLoss and nothing is committed. The caller keeps ownership of the stream.
    /// </summary>
    public async Task UploadAsync(string blobName, Stream checkpoint, string sha256, long size, CancellationToken cancellationToken)
    {
        await using var verifying = new ChecksumVerifyingStream(checkpoint, size, sha256, leaveOpen: true);
        var upload = new BlobUploadOptions
        {
            // The slot is ours alone; If-None-Match makes a stray second writer fail instead of overwriting.
            Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
            HttpHeaders = new BlobHttpHeaders { ContentType = "application/octet-stream" },
            Metadata = new Dictionary<string, string> { [BlobChecksum.Sha256Metadata] = sha256 },
        };
        if (options.UploadTransferOptions is { } transfer)
            upload.TransferOptions = transfer;

        try
        {
            await container.GetBlobClient(blobName).UploadAsync(verifying, upload, cancellationToken);
        }
        catch (AggregateException e) when (e.InnerExceptions.Count == 1 && e.InnerException is IfcbException inner)
        {
            throw inner;
        }
    }

    /// <summary>
    /// Copies <paramref name="source"/> (exactly the version <paramref name="sourceETag"/>) into <paramref name="blobName"/>
    /// (which must not exist yet) inside storage: the bytes never pass through this process. An asynchronous Copy Blob,
    /// polled to completion, because the synchronous Copy Blob From URL stops at 256 MiB and checkpoints may be up to
    /// <see cref="RegistryOptions.MaxCheckpointBytes"/>; within one account it normally completes at once. The source is
    /// read with a short-lived read-only SAS when its client holds the account key. Returns the copied blob's size.
    /// </summary>
    public async Task<long> CopyAsync(string blobName, BlobClient source, ETag sourceETag, string sha256,
        CancellationToken cancellationToken)
    {
        var destination = container.GetBlobClient(blobName);
        var copy = new BlobCopyFromUriOptions
        {
            // The slot is ours alone (If-None-Match), and the source must still be the blob whose properties were checked.
            DestinationConditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
            SourceConditions = new BlobRequestConditions { IfMatch = sourceETag },
            Metadata = new Dictionary<string, string> { [BlobChecksum.Sha256Metadata] = sha256 },
        };
        var sourceUri = source.CanGenerateSasUri
            ? source.GenerateSasUri(BlobSasPermissions.Read, DateTimeOffset.UtcNow + options.UploadTimeout + SasClockSkew)
            : source.Uri;
        var operation = await destination.StartCopyFromUriAsync(sourceUri, copy, cancellationToken);
        try
        {
            await operation.WaitForCompletionAsync(CopyPollInterval, cancellationToken);
        }
        catch (Exception) when (!operation.HasCompleted)
        {
            try
            {
                await destination.AbortCopyFromUriAsync(operation.Id, cancellationToken: CancellationToken.None);
            }
            catch (RequestFailedException)
            {
                // Finished or failed meanwhile; the caller deletes the destination either way.
            }

            throw;
        }

        var copied = (await destination.GetPropertiesAsync(cancellationToken: cancellationToken)).Value;
        if (copied.CopyStatus != CopyStatus.Success)
        {
            throw new IfcbException(ErrorKind.Unavailable,
                $"Copying the checkpoint inside storage ended {copied.CopyStatus}: {copied.CopyStatusDescription}. " +
                "Nothing was stored; register again.");
        }

        return copied.ContentLength;
    }

    /// <summary>
    /// Reads the stored checkpoint once, start to end, and fails with DataLoss unless its sha256 and size are the declared
    /// ones (the check <see cref="UploadAsync"/> makes on the way in, for bytes that did not come through this process).
    /// </summary>
    public async Task VerifyAsync(string blobName, string sha256, long size, CancellationToken cancellationToken)
    {
        var content = (await container.GetBlobClient(blobName).DownloadStreamingAsync(cancellationToken: cancellationToken))
            .Value.Content;
        await using var verifying = new ChecksumVerifyingStream(content, size, sha256, leaveOpen: false);
        await verifying.CopyToAsync(Stream.Null, cancellationToken);
    }

    /// <summary>
    /// Reads the stored checkpoint's hparams.json back from storage. The blob is opened as a seekable stream with a
    /// small buffer, so only the zip's directory (at its end) and the hparams entry (at its start) are fetched, a few
    /// 64 KiB ranges: the weights in between are never downloaded.
    /// </summary>
    public async Task<CheckpointHeader> ReadHeaderAsync(string blobName, CancellationToken cancellationToken)
    {
        var read = new BlobOpenReadOptions(allowModifications: false) { BufferSize = HeaderReadBufferBytes };
        await using var stored = await container.GetBlobClient(blobName).OpenReadAsync(read, cancellationToken);
        try
        {
            // The zip reader is synchronous; keep its few blocking range reads off the caller's thread.
            return await Task.Run(() => CheckpointHeader.Read(stored), cancellationToken);
        }
        catch (InvalidDataException e)
        {
            throw IfcbException.InvalidArgument($"The uploaded file is not a valid model checkpoint: {e.Message}");
        }
    }

    /// <summary>
    /// Opens <paramref name="version"/>'s checkpoint: FailedPrecondition unless it is READY, DataLoss when its bytes are
    /// missing. The stream verifies sha256 and size as it is read (unless <see cref="RegistryOptions.VerifyDownloads"/> is off).
    /// </summary>
    public async Task<CheckpointDownload> OpenDownloadAsync(ModelVersion version, CancellationToken cancellationToken)
    {
        if (version.Status != ModelVersionStatus.Ready)
        {
            throw new IfcbException(ErrorKind.FailedPrecondition,
                $"Version {version.Version} of '{version.ModelName}' is {version.Status.ToString().ToUpperInvariant()}; " +
                "only READY versions can be downloaded.");
        }

        Stream content;
        try
        {
            var response = await container.GetBlobClient(version.CheckpointBlob)
                .DownloadStreamingAsync(cancellationToken: cancellationToken);
            content = response.Value.Content;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new IfcbException(ErrorKind.DataLoss,
                $"Checkpoint of READY version {version.Version} of '{version.ModelName}' is missing from storage " +
                $"({version.CheckpointBlob}).", e);
        }

        return new CheckpointDownload(version,
            options.VerifyDownloads ? new ChecksumVerifyingStream(content, version.SizeBytes, version.Sha256, leaveOpen: false) : content);
    }
}
