using System.Globalization;
using Ifcb.Platform;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>
/// Renames a registered model. Blob storage cannot rename a folder, so the model is copied and the old name closed, in
/// an order that keeps every step safe against concurrent writers and lets an interrupted rename be finished by
/// renaming again.
/// </summary>
/// <remarks>
/// <list type="number">
/// <item>The old model.json gets <see cref="RegisteredModel.RenamedTo"/> (one guarded write): every change that goes
/// through model.json under the old name fails from then on with NotFound naming the new name, including a
/// registration's allocation, which takes its just-created version back.</item>
/// <item>The new model.json is created (If-None-Match) as a copy with <see cref="RegisteredModel.RenamedFrom"/>: hidden
/// (Aborted, "being renamed") until the end.</item>
/// <item>Each version document under the old name is frozen (<see cref="ModelVersion.MovedTo"/>, a guarded write, after
/// which no registration, update or expiry changes it), then its checkpoint is copied inside storage and the document
/// is written under the new name. A version still PENDING was uploading: it lands FAILED, and its registration fails
/// (NotFound naming the new name) when it tries to mark it READY. Other blobs in the version's folder are copied as
/// they are.</item>
/// <item>Idempotency claims and the audit history are copied, the new name's search index is built, the new
/// model.json is opened, and the blobs under the old name are deleted, all but its model.json (the redirect).</item>
/// </list>
/// </remarks>
internal sealed class ModelRenames(
    BlobDocumentStore store, RegistryOptions options, TimeProvider time, ModelDocuments models, CheckpointStore checkpoints,
    AuditLog audit, SearchIndex index)
{
    /// <summary>The rename; the caller has validated both names (different) and the actor.</summary>
    public async Task<RegisteredModel> RenameAsync(string from, string to, string actor, CancellationToken cancellationToken)
    {
        var source = (await models.TryReadRawAsync(from, cancellationToken) ?? throw ModelDocuments.NotFound(from)).Value;
        if ((source.RenamedTo is { } elsewhere && elsewhere != to) || source.RenamedFrom is not null)
            throw ModelDocuments.Unusable(source)!;

        var target = (await models.TryReadRawAsync(to, cancellationToken))?.Value;
        if (target is not null && target.RenamedFrom != from)
        {
            if (target.RenamedFrom is null && source.RenamedTo == to)
            {
                // Renamed earlier and finished but for the clean-up (the new model may have changed since: copy nothing).
                await DeleteOldBlobsAsync(from, cancellationToken);
                return target;
            }

            throw new IfcbException(ErrorKind.AlreadyExists, $"Registered model '{to}' already exists; choose another new name.");
        }

        var closed = await models.UpdateRawAsync(from, actor, model => Task.FromResult(model.RenamedTo == to
            ? null
            : ModelDocuments.Unusable(model) is { } unusable ? throw unusable : model with { RenamedTo = to }), cancellationToken);

        var now = time.GetUtcNow();
        var opening = closed.Value with { Name = to, RenamedTo = null, RenamedFrom = from, DeletingVersions = [] };
        opening = opening with { UpdatedAt = now, UpdatedBy = actor };
        if (await models.TryCreateAsync(opening, cancellationToken) is null
            && (await models.TryReadRawAsync(to, cancellationToken))?.Value.RenamedFrom != from)
        {
            // Someone created the new name between the check and now: give the old name back.
            await models.UpdateRawAsync(from, actor, model => Task.FromResult<RegisteredModel?>(model with { RenamedTo = null }),
                CancellationToken.None);
            throw new IfcbException(ErrorKind.AlreadyExists, $"Registered model '{to}' already exists; choose another new name.");
        }

        var numbers = await store.VersionNumbersAsync(from, cancellationToken);
        foreach (var number in numbers.Where(n => !closed.Value.DeletingVersions.Contains(n)))
            await MoveVersionAsync(from, to, number, actor, cancellationToken);

        await CopyClaimsAsync(from, to, cancellationToken);
        await CopyHistoryAsync(from, to, cancellationToken);
        await index.RebuildAsync(to, cancellationToken);
        var opened = await models.UpdateRawAsync(to, actor, model => Task.FromResult(model.RenamedFrom is null
            ? null
            : model with { RenamedFrom = null }), cancellationToken);

        (string, string)[] details = [("from", from), ("to", to), ("versions", numbers.Count.ToString(CultureInfo.InvariantCulture))];
        await audit.AppendAsync(opened.Value, actor, AuditAction.ModelRenamed, null, details, cancellationToken);
        await audit.AppendAsync(from, actor, AuditAction.ModelRenamed, null, closed.Value.Revision, details, cancellationToken);
        await DeleteOldBlobsAsync(from, cancellationToken);
        return opened.Value;
    }

    private async Task MoveVersionAsync(string from, string to, int number, string actor, CancellationToken cancellationToken)
    {
        var slot = new VersionSlot(from, number);
        Stored<ModelVersion> frozen;
        try
        {
            (frozen, _) = await store.UpdateAsync<ModelVersion>(slot.Document,
                version => version.MovedTo == to ? null : version with { MovedTo = to }, slot.NotFound, cancellationToken);
        }
        catch (IfcbException e) when (e.Kind == ErrorKind.NotFound)
        {
            return; // deleted (a registration took it back) since the listing
        }

        var version = frozen.Value;
        var moved = version with { ModelName = to, MovedTo = null, CheckpointBlob = RegistryLayout.Checkpoint(to, number) };
        if (version.Status == ModelVersionStatus.Ready)
        {
            var checkpoint = store.Container.GetBlobClient(version.CheckpointBlob);
            var properties = await checkpoint.GetPropertiesAsync(cancellationToken: cancellationToken);
            // A rename interrupted after this copy copies again.
            await store.DeleteAsync(moved.CheckpointBlob, cancellationToken);
            await checkpoints.CopyAsync(moved.CheckpointBlob, checkpoint, properties.Value.ETag, version.Sha256, cancellationToken);
        }
        else if (version.Status == ModelVersionStatus.Pending)
        {
            moved = moved with
            {
                Status = ModelVersionStatus.Failed,
                StatusMessage = $"The model was renamed from '{from}' to '{to}' while this version's checkpoint uploaded; " +
                    $"register it again under '{to}'.",
                UpdatedAt = time.GetUtcNow(),
                UpdatedBy = actor,
            };
        }

        // Whatever else the version folder holds (blobs kept beside a version, e.g. derived files) moves with it as it is.
        var oldFolder = RegistryLayout.VersionFolder(from, number);
        var others = (await store.ListBlobNamesAsync(oldFolder, cancellationToken))
            .Where(name => name != slot.Document && name != version.CheckpointBlob);
        foreach (var name in others)
            await CopyBlobAsync(name, RegistryLayout.VersionFolder(to, number) + name[oldFolder.Length..], cancellationToken);

        await store.PutAsync(RegistryLayout.VersionDocument(to, number), moved, cancellationToken);
    }

    /// <summary>A server-side copy of one blob (content and metadata), overwriting the destination.</summary>
    private async Task CopyBlobAsync(string sourceName, string destinationName, CancellationToken cancellationToken)
    {
        var source = store.Container.GetBlobClient(sourceName);
        var sourceUri = source.CanGenerateSasUri
            ? source.GenerateSasUri(Azure.Storage.Sas.BlobSasPermissions.Read, time.GetUtcNow() + options.UploadTimeout)
            : source.Uri;
        var destination = store.Container.GetBlobClient(destinationName);
        var copy = await destination.StartCopyFromUriAsync(sourceUri, cancellationToken: cancellationToken);
        await copy.WaitForCompletionAsync(TimeSpan.FromMilliseconds(250), cancellationToken);
    }

    private async Task CopyClaimsAsync(string from, string to, CancellationToken cancellationToken)
    {
        var claims = (await store.ListBlobNamesAsync(RegistryLayout.ModelPrefix(from), cancellationToken))
            .Where(name => name.StartsWith(RegistryLayout.IdempotencyPrefix(from), StringComparison.Ordinal));
        foreach (var name in claims)
        {
            if (await store.ReadAsync<IdempotencyClaims.Claim>(name, cancellationToken) is not { } claim)
                continue;

            var renamed = RegistryLayout.IdempotencyClaim(to, claim.Value.Key);
            await store.PutAsync(renamed, claim.Value with { Name = renamed }, cancellationToken);
        }
    }

    /// <summary>Copies the audit log under the new name (same entry names, so the order is kept); the old log stays too.</summary>
    private async Task CopyHistoryAsync(string from, string to, CancellationToken cancellationToken)
    {
        var entries = await store.ListBlobNamesAsync(RegistryLayout.AuditPrefix(from), cancellationToken);
        foreach (var batch in entries.Chunk(options.ListReadConcurrency))
        {
            await Task.WhenAll(batch.Select(async name =>
            {
                if (await store.ReadAsync<AuditEntry>(name, cancellationToken) is { } entry)
                {
                    var copy = RegistryLayout.AuditPrefix(to) + name[RegistryLayout.AuditPrefix(from).Length..];
                    await store.PutAsync(copy, entry.Value with { ModelName = to }, cancellationToken);
                }
            }));
        }
    }

    /// <summary>Deletes everything under the old name but its model.json (the redirect), and its search index.</summary>
    private async Task DeleteOldBlobsAsync(string from, CancellationToken cancellationToken)
    {
        var keep = RegistryLayout.ModelDocument(from);
        var blobs = await store.ListBlobNamesAsync(RegistryLayout.ModelPrefix(from), cancellationToken);
        await Parallel.ForEachAsync(
            blobs.Where(blob => blob != keep),
            new ParallelOptions { MaxDegreeOfParallelism = options.ListReadConcurrency, CancellationToken = cancellationToken },
            async (blob, token) => await store.DeleteAsync(blob, token));
        await index.DeleteAsync(from, cancellationToken);
    }
}
