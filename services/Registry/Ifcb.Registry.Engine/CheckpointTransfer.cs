using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Ifcb.Platform;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>
/// How a registration's checkpoint bytes reach the registry's blob: opened before the version number is allocated
/// (so a missing source uses no number), stored into the PENDING version's blob afterwards, where a sha256 or size
/// that differs from the declared one fails with DataLoss.
/// </summary>
internal abstract class CheckpointTransfer : IAsyncDisposable
{
    /// <summary>What the transfer is called in failure messages ("upload", "copy").</summary>
    public abstract string Noun { get; }

    /// <summary>Why a transfer can outlast the deadline, for the DeadlineExceeded message.</summary>
    public abstract string StallHint { get; }

    /// <summary>Extra details for the version's audit entry: how the bytes came and how their sha256 was checked.</summary>
    public virtual IReadOnlyList<(string Key, string Value)> AuditDetails => [];

    public abstract Task StoreAsync(CheckpointStore store, string blobName, string sha256, long size, CancellationToken cancellationToken);

    public virtual ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>Bytes sent by a client (the RegisterVersion RPC), hashed and counted as they are uploaded.</summary>
internal sealed class StreamedCheckpoint(Stream checkpoint, bool ownsCheckpoint) : CheckpointTransfer
{
    public override string Noun => "upload";

    public override string StallHint => "the client sent too slowly or stalled";

    public override Task StoreAsync(CheckpointStore store, string blobName, string sha256, long size,
        CancellationToken cancellationToken) =>
        store.UploadAsync(blobName, checkpoint, sha256, size, cancellationToken);

    public override ValueTask DisposeAsync() => ownsCheckpoint ? checkpoint.DisposeAsync() : ValueTask.CompletedTask;
}

/// <summary>
/// A checkpoint already in blob storage (Training's best checkpoint), copied by the storage service into the
/// registry's blob: the weights never pass through the registry process.
/// </summary>
/// <remarks>
/// The sha256: when the source blob records one (<see cref="BlobChecksum.Sha256Metadata"/>, written by its writer in
/// the same request as its bytes, as Training's artifact sink does), it must equal the declared one, and the copy is
/// pinned to that exact blob version (If-Match on its ETag), so the copied bytes are the ones the writer hashed; they
/// are then trusted without being read again. That leaves the integrity of the bytes at rest and in the copy to the
/// storage service, which checks it itself, and saves a full read of every checkpoint. A source that records no
/// sha256 is read once after the copy and hashed (still one read instead of a download plus an upload).
/// </remarks>
internal sealed class CopiedCheckpoint : CheckpointTransfer
{
    private readonly BlobClient _source;
    private readonly BlobProperties _properties;
    private readonly string? _recordedSha256;

    private CopiedCheckpoint(BlobClient source, BlobProperties properties)
    {
        _source = source;
        _properties = properties;
        _recordedSha256 = properties.Metadata.TryGetValue(BlobChecksum.Sha256Metadata, out var recorded) ? recorded : null;
    }

    public override string Noun => "copy";

    public override string StallHint => "storage did not finish the server-side copy";

    public override IReadOnlyList<(string Key, string Value)> AuditDetails =>
        [("checkpoint_source", $"{_source.BlobContainerName}/{_source.Name}"), ("checkpoint_transfer", "server-side copy"),
         ("sha256_check", _recordedSha256 is null ? "read back after the copy" : "recorded when the source was written")];

    /// <summary>Reads the source's properties (one request, no bytes); FailedPrecondition when it does not exist.</summary>
    public static async Task<CheckpointTransfer> OpenAsync(BlobClient source, NewModelVersion request, CancellationToken cancellationToken)
    {
        var whose = request.Source.TrainingJobId is { Length: > 0 } job ? $"of training job {job} " : "";
        try
        {
            var properties = await source.GetPropertiesAsync(cancellationToken: cancellationToken);
            return new CopiedCheckpoint(source, properties.Value);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw IfcbException.FailedPrecondition(
                $"The checkpoint {whose}({source.BlobContainerName}/{source.Name}) does not exist; nothing was registered. " +
                "Train again, or register the checkpoint by hand if you have it.");
        }
        catch (RequestFailedException e) when (e.Status == 403)
        {
            // The source came with a read grant (a SAS URI) that storage no longer honours: it lapsed, or was forged.
            throw IfcbException.FailedPrecondition(
                $"Storage refused the read grant for the checkpoint {whose}({source.BlobContainerName}/{source.Name}): {e.ErrorCode}. " +
                "The grant has expired or is not valid; nothing was registered. Register the checkpoint by hand (ifcb models register).");
        }
        catch (RequestFailedException e) when (e.Status == 400)
        {
            // An invalid container or blob name: the storage service refuses it as a bad request.
            throw IfcbException.InvalidArgument(
                $"The checkpoint location {whose}({source.BlobContainerName}/{source.Name}) is not valid: {e.ErrorCode}.");
        }
    }

    public override async Task StoreAsync(CheckpointStore store, string blobName, string sha256, long size,
        CancellationToken cancellationToken)
    {
        // Checked on the source before anything is copied; the copy is pinned to this version of it.
        CheckSize(_properties.ContentLength, size);
        if (_recordedSha256 is not null && !string.Equals(_recordedSha256, sha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new IfcbException(ErrorKind.DataLoss,
                $"Checkpoint sha256 is {_recordedSha256} (recorded when {_source.BlobContainerName}/{_source.Name} was written) but " +
                $"{sha256} was declared; the declared hash is wrong or the blob is not the checkpoint that was announced.");
        }

        CheckSize(await store.CopyAsync(blobName, _source, _properties.ETag, sha256, cancellationToken), size);
        if (_recordedSha256 is null)
            await store.VerifyAsync(blobName, sha256, size, cancellationToken);
    }

    private void CheckSize(long actual, long declared)
    {
        if (actual != declared)
        {
            throw new IfcbException(ErrorKind.DataLoss,
                $"Checkpoint {_source.BlobContainerName}/{_source.Name} is {actual} bytes but {declared} were declared; " +
                "the declared size is wrong or the blob is not the checkpoint that was announced.");
        }
    }
}
