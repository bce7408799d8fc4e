using System.Globalization;
using Ifcb.Platform;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>
/// Deletes versions and whole models, in an order that lets an interrupted deletion be finished by deleting again;
/// the audit history is kept.
/// </summary>
internal sealed class Deletions(
    BlobDocumentStore store, RegistryOptions options, ModelDocuments models, IdempotencyClaims claims, AuditLog audit,
    SearchIndex index)
{
    /// <summary>
    /// Deletes a model (FailedPrecondition while it has versions, unless <paramref name="force"/>) and everything under
    /// models/{name}/; the caller has validated the name and actor.
    /// </summary>
    public async Task<ModelDeletion> DeleteModelAsync(string name, string actor, bool force, CancellationToken cancellationToken)
    {
        var existing = await models.TryReadRawAsync(name, cancellationToken) ?? throw ModelDocuments.NotFound(name);
        // A renamed model's old name is only a redirect: deleting it frees the name, once the rename has finished.
        var redirect = existing.Value.RenamedTo is not null;
        if (redirect && (await models.TryReadRawAsync(existing.Value.RenamedTo!, cancellationToken))?.Value.RenamedFrom == name)
        {
            throw new IfcbException(ErrorKind.FailedPrecondition,
                $"Registered model '{name}' is being renamed to '{existing.Value.RenamedTo}'; rename it again to finish, then delete.");
        }

        if (!redirect && ModelDocuments.Unusable(existing.Value) is { } unusable)
            throw unusable;

        var versions = redirect ? [] : await store.VersionNumbersAsync(name, cancellationToken);
        if (versions.Count > 0 && !force)
        {
            throw new IfcbException(ErrorKind.FailedPrecondition,
                $"Registered model '{name}' still has {versions.Count} version(s); delete them first or delete with force.");
        }

        // model.json goes last, so an interrupted delete leaves a model that can simply be deleted again.
        var modelDocument = RegistryLayout.ModelDocument(name);
        var blobs = await store.ListBlobNamesAsync(RegistryLayout.ModelPrefix(name), cancellationToken);
        await Parallel.ForEachAsync(
            blobs.Where(blob => blob != modelDocument),
            new ParallelOptions { MaxDegreeOfParallelism = options.ListReadConcurrency, CancellationToken = cancellationToken },
            async (blob, token) => await store.DeleteAsync(blob, token));
        await store.DeleteAsync(modelDocument, cancellationToken);
        // After model.json: an interrupted delete leaves a model that still has its index (and a finished one no index).
        await index.DeleteAsync(name, cancellationToken);

        await audit.AppendAsync(name, actor, AuditAction.ModelDeleted, null, null,
            [("forced", force ? "true" : "false"), ("versions_deleted", versions.Count.ToString(CultureInfo.InvariantCulture)),
                ("blobs_deleted", blobs.Count.ToString(CultureInfo.InvariantCulture))],
            cancellationToken);
        return new ModelDeletion(existing.Value, [.. versions]);
    }

    /// <summary>
    /// Deletes a version, its cached exports, evaluations and lineage records, and its checkpoint (FailedPrecondition
    /// while an alias points at it, unless <paramref name="force"/>, which removes those aliases first); the caller has
    /// validated the actor.
    /// </summary>
    /// <remarks>
    /// One ETag-guarded write of model.json removes the aliases and marks the number in
    /// <see cref="RegisteredModel.DeletingVersions"/>; SetAlias refuses a marked number, so no alias can land on the
    /// version while its blobs go. The document goes last but for the mark, so a delete interrupted at any point is
    /// finished by deleting again (if only the mark was left, that second delete reports NotFound once it has cleared it).
    /// </remarks>
    public async Task<ModelVersion> DeleteVersionAsync(VersionSlot slot, string actor, bool force, CancellationToken cancellationToken)
    {
        var (modelName, version) = (slot.ModelName, slot.Version);
        var existing = await store.ReadAsync<ModelVersion>(slot.Document, cancellationToken);

        string[] removedAliases = [];
        var model = await models.UpdateAsync(modelName, actor, current =>
        {
            if (existing is null && !current.DeletingVersions.Contains(version))
                throw slot.NotFound();

            removedAliases = current.Aliases.Where(a => a.Value == version).Select(a => a.Key).ToArray();
            if (removedAliases.Length > 0 && !force)
            {
                throw new IfcbException(ErrorKind.FailedPrecondition,
                    $"Version {version} of '{modelName}' is the target of {string.Join(", ", removedAliases.Select(a => "@" + a))}; " +
                    "move or delete the alias first, or delete with force.");
            }

            // Raising the counter here guarantees a deleted number is never handed out again.
            return removedAliases.Length == 0 && current.LatestVersion >= version && current.DeletingVersions.Contains(version)
                ? null
                : current with
                {
                    Aliases = current.Aliases.RemoveRange(removedAliases),
                    LatestVersion = Math.Max(current.LatestVersion, version),
                    DeletingVersions = current.DeletingVersions.Add(version),
                };
        }, cancellationToken);

        string[] derivedPrefixes =
        [
            RegistryLayout.ExportsPrefix(modelName, version), RegistryLayout.EvaluationsPrefix(modelName, version),
            RegistryLayout.UsesPrefix(modelName, version), RegistryLayout.ChildrenPrefix(modelName, version),
        ];
        foreach (var prefix in derivedPrefixes)
        {
            foreach (var derived in await store.ListBlobNamesAsync(prefix, cancellationToken))
                await store.DeleteAsync(derived, cancellationToken);
        }
        await store.DeleteAsync(existing?.Value.CheckpointBlob ?? slot.Checkpoint, cancellationToken);
        if (existing?.Value.IdempotencyKey is { } key)
            await claims.ForgetAsync(modelName, key, version, cancellationToken);

        await index.TrackAsync(modelName, version, () => store.DeleteAsync(slot.Document, cancellationToken), cancellationToken);
        await models.UpdateAsync(modelName, actor, current =>
                current.DeletingVersions.Contains(version)
                    ? current with { DeletingVersions = current.DeletingVersions.Remove(version) }
                    : null,
            cancellationToken);
        if (existing is null)
        {
            throw new IfcbException(ErrorKind.NotFound,
                $"Version {version} of model '{modelName}' does not exist; an interrupted deletion of it has now been completed.");
        }

        foreach (var alias in removedAliases)
        {
            await audit.AppendAsync(model.Value, actor, AuditAction.AliasDeleted, version, AuditLog.AliasMove(alias, version, null),
                cancellationToken);
        }

        await audit.AppendAsync(modelName, actor, AuditAction.VersionDeleted, version, null,
            [("sha256", existing.Value.Sha256), ("status", existing.Value.Status.ToString().ToUpperInvariant())],
            cancellationToken);
        return existing.Value with { Aliases = [.. removedAliases] };
    }
}
