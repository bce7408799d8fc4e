using System.Globalization;
using Azure;
using Ifcb.Platform;
using Ifcb.Platform.Checkpoints;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>
/// Registers a new version end to end: honours its idempotency key, allocates the next number (PENDING), stores the
/// checkpoint (uploaded or copied, see <see cref="CheckpointTransfer"/>) and checks it within
/// <see cref="RegistryOptions.UploadTimeout"/>, then marks it READY, or FAILED with no checkpoint blob left behind.
/// </summary>
internal sealed class VersionRegistrar(
    BlobDocumentStore store, RegistryOptions options, TimeProvider time, ModelDocuments models, VersionAllocator allocator,
    IdempotencyClaims claims, CheckpointStore checkpoints, AuditLog audit, RegistryQueries queries, SearchIndex index)
{
    /// <summary>
    /// The registration behind every <c>ModelRegistry.RegisterVersion*Async</c>; the caller has validated the model
    /// name, actor and request. The checkpoint is opened only when a new version is needed, and disposed here.
    /// </summary>
    public async Task<VersionRegistration> RegisterAsync(string modelName, NewModelVersion request,
        Func<CancellationToken, Task<CheckpointTransfer>> openCheckpoint, string actor, CancellationToken cancellationToken)
    {
        var sha256 = RegistryValidation.Sha256(request.Sha256);
        var model = await models.ReadAsync(modelName, cancellationToken);

        Stored<IdempotencyClaims.Claim>? claim = null;
        if (request.IdempotencyKey is { } key)
        {
            var (existing, ownClaim) = await claims.ClaimAsync(modelName, key, sha256, cancellationToken);
            if (existing is not null)
                return new VersionRegistration(await queries.WithAliasesAsync(existing, cancellationToken), AlreadyRegistered: true);

            claim = ownClaim;
        }

        // Started before the version exists, so no upload outlives its version's CreatedAt + UploadTimeout.
        using var deadline = new CancellationTokenSource(options.UploadTimeout, time);
        using var uploadCancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        CheckpointTransfer checkpoint;
        Stored<ModelVersion> pending;
        try
        {
            checkpoint = await openCheckpoint(uploadCancellation.Token);
            try
            {
                pending = await allocator.AllocateAsync(model.Value, number => Draft(modelName, number, request, sha256, actor), actor,
                    cancellationToken);
            }
            catch
            {
                await checkpoint.DisposeAsync();
                throw;
            }
        }
        catch when (claim is not null)
        {
            await claims.ReleaseAsync(claim);
            throw;
        }

        await using var ownedCheckpoint = checkpoint;
        var number = pending.Value.Version;

        ModelVersion ready;
        try
        {
            if (claim is not null)
                await claims.PublishVersionAsync(claim, number, cancellationToken);

            CheckpointHeader stored;
            try
            {
                await checkpoint.StoreAsync(checkpoints, pending.Value.CheckpointBlob, sha256, request.SizeBytes, uploadCancellation.Token);
                stored = await checkpoints.ReadHeaderAsync(pending.Value.CheckpointBlob, uploadCancellation.Token);
            }
            catch (OperationCanceledException e) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw new IfcbException(ErrorKind.DeadlineExceeded,
                    $"The checkpoint {checkpoint.Noun} did not finish within {Durations.Describe(options.UploadTimeout)} " +
                    $"(the registry's upload deadline); {checkpoint.StallHint}. Nothing was stored; register again.", e);
            }

            CheckpointConformance.Check(request, stored);
            ready = await MarkReadyAsync(pending, version => CheckpointConformance.Complete(version, stored), actor, cancellationToken);
        }
        catch (Exception failure)
        {
            var reason = failure is IfcbException ? failure.Message : $"Checkpoint {checkpoint.Noun} failed: {Faults.Reason(failure)}";
            if (await MarkFailedAsync(pending.Value, reason, actor) is { } failed)
                failure.Data[FailedVersionKey] = failed;
            throw;
        }

        await audit.AppendAsync(modelName, actor, AuditAction.VersionRegistered, number, null,
            [("sha256", sha256), ("size_bytes", request.SizeBytes.ToString(CultureInfo.InvariantCulture)),
             ("training_job_id", request.Source.TrainingJobId ?? ""), ("idempotency_key", request.IdempotencyKey ?? ""),
             .. checkpoint.AuditDetails],
            cancellationToken);
        // Aliases need a READY version and this one only just became READY, so there are none to look up.
        return new VersionRegistration(ready, AlreadyRegistered: false);
    }

    /// <summary>The PENDING version.json the allocator tries to create for <paramref name="number"/>.</summary>
    private ModelVersion Draft(string modelName, int number, NewModelVersion request, string sha256, string actor)
    {
        var now = time.GetUtcNow();
        return new ModelVersion
        {
            ModelName = modelName, Version = number, Status = ModelVersionStatus.Pending, Description = request.Description,
            Arch = request.Arch, Classes = request.Classes, ImgNorm = request.ImgNorm, Pretrained = request.Pretrained,
            Metrics = request.Metrics, Tags = request.Tags, Source = request.Source, DatasetFingerprint = request.DatasetFingerprint,
            Resize = request.Resize, CheckpointBlob = RegistryLayout.Checkpoint(modelName, number), Sha256 = sha256,
            SizeBytes = request.SizeBytes,
            IdempotencyKey = request.IdempotencyKey, CreatedAt = now, CreatedBy = actor, UpdatedAt = now, UpdatedBy = actor,
        };
    }

    /// <summary>
    /// PENDING → READY (with <paramref name="complete"/> applied), normally one write using the ETag from creation;
    /// re-reads only if someone wrote since.
    /// </summary>
    private Task<ModelVersion> MarkReadyAsync(
        Stored<ModelVersion> pending, Func<ModelVersion, ModelVersion> complete, string actor, CancellationToken cancellationToken) =>
        index.TrackAsync(pending.Value.ModelName, pending.Value.Version,
            () => MarkReadyUntrackedAsync(pending, complete, actor, cancellationToken), ready => ready.Version, cancellationToken);

    private async Task<ModelVersion> MarkReadyUntrackedAsync(
        Stored<ModelVersion> pending, Func<ModelVersion, ModelVersion> complete, string actor, CancellationToken cancellationToken)
    {
        var (modelName, number) = (pending.Value.ModelName, pending.Value.Version);
        var document = RegistryLayout.VersionDocument(modelName, number);
        var ready = complete(pending.Value) with { Status = ModelVersionStatus.Ready, UpdatedAt = time.GetUtcNow(), UpdatedBy = actor };
        if (await store.TryReplaceAsync(document, ready, pending.ETag, cancellationToken) is not null)
            return ready;

        var updated = await store.UpdateAsync<ModelVersion>(document, version =>
                version.MovedTo is { } movedTo
                    ? throw new IfcbException(ErrorKind.NotFound,
                        $"Registered model '{modelName}' was renamed to '{movedTo}' while version {number}'s checkpoint uploaded; " +
                        $"register it again under '{movedTo}'.")
                    : version.Status == ModelVersionStatus.Pending
                    ? complete(version) with { Status = ModelVersionStatus.Ready, UpdatedAt = time.GetUtcNow(), UpdatedBy = actor }
                    : throw new IfcbException(ErrorKind.Aborted,
                        $"Version {number} of '{modelName}' changed to {version.Status} while its checkpoint uploaded; register again."),
            () => new IfcbException(ErrorKind.Aborted,
                $"Version {number} of '{modelName}' was deleted while its checkpoint uploaded; register again."),
            cancellationToken).Updated();
        return updated.Value;
    }

    /// <summary>Where a failed registration's exception carries the FAILED version (<c>ModelRegistry.FailedVersionOf</c>).</summary>
    public const string FailedVersionKey = "ifcb.registry.failed_version";

    /// <summary>
    /// PENDING → FAILED with <paramref name="reason"/>, deleting any checkpoint bytes; best effort. Returns the FAILED
    /// version when this call failed it (null when it had moved on, or the write failed).
    /// </summary>
    private async Task<ModelVersion?> MarkFailedAsync(ModelVersion pending, string reason, string actor)
    {
        // Cleanup must run even when the caller's token was cancelled, hence CancellationToken.None.
        try
        {
            await store.DeleteAsync(pending.CheckpointBlob, CancellationToken.None);
            // Only from PENDING: if the version was expired meanwhile, its reason (and audit entry) already stand.
            var slot = VersionSlot.Of(pending);
            var failed = await index.TrackAsync(slot.ModelName, slot.Version, () => store.UpdateAsync<ModelVersion>(slot.Document,
                version => version.Status != ModelVersionStatus.Pending || version.MovedTo is not null ? null : version with
                {
                    Status = ModelVersionStatus.Failed,
                    StatusMessage = reason,
                    UpdatedAt = time.GetUtcNow(),
                    UpdatedBy = actor,
                },
                slot.NotFound, CancellationToken.None), _ => slot.Version, CancellationToken.None);
            if (!failed.Changed)
                return null;

            await audit.AppendAsync(pending.ModelName, actor, AuditAction.VersionFailed, pending.Version, null, [("reason", reason)],
                CancellationToken.None);
            return failed.Document.Value;
        }
        catch (Exception e) when (e is RequestFailedException or IfcbException)
        {
            // The original failure is what the caller needs; a version left PENDING is never served as READY.
            return null;
        }
    }
}
