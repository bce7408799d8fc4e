using System.Globalization;
using Ifcb.Platform;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>
/// Sets, moves and removes a model's @aliases: each change is one ETag-guarded write of model.json (where aliases
/// live), audited with where the alias pointed before and after.
/// </summary>
internal sealed class AliasChanges(BlobDocumentStore store, RegistryOptions options, ModelDocuments models, AuditLog audit)
{
    /// <summary>
    /// Points <paramref name="alias"/> at the READY version in <paramref name="slot"/>; the caller has validated the input.
    /// </summary>
    /// <remarks>
    /// The version is checked after model.json is read and before it is written back If-Match: a delete marks the
    /// number in model.json before it removes the document, so either this write fails and the check runs again (and
    /// sees the mark, or the missing document), or the alias is in place before the delete looks for aliases.
    /// </remarks>
    public async Task<AliasChange> SetAsync(VersionSlot slot, string alias, string actor, CancellationToken cancellationToken)
    {
        var (modelName, version) = (slot.ModelName, slot.Version);
        int? previous = null;
        var updated = await models.UpdateAsync(modelName, actor, async model =>
        {
            if (model.DeletingVersions.Contains(version))
            {
                throw new IfcbException(ErrorKind.NotFound,
                    $"Version {version} of '{modelName}' is being deleted; point @{alias} at another version.");
            }

            var target = await store.ReadAsync<ModelVersion>(slot.Document, cancellationToken) ?? throw slot.NotFound();
            if (target.Value.Status != ModelVersionStatus.Ready)
            {
                throw new IfcbException(ErrorKind.FailedPrecondition,
                    $"Version {version} of '{modelName}' is {target.Value.Status.ToString().ToUpperInvariant()}; " +
                    "aliases may only point at READY versions.");
            }

            previous = model.Aliases.TryGetValue(alias, out var current) ? current : null;
            if (previous is null && model.Aliases.Count >= options.MaxAliasesPerModel)
            {
                throw new IfcbException(ErrorKind.ResourceExhausted, string.Create(CultureInfo.InvariantCulture,
                    $"Model '{modelName}' already has {model.Aliases.Count} aliases, the most it may have " +
                    $"(RegistryOptions.MaxAliasesPerModel); delete one first."));
            }

            return previous == version ? null : model with { Aliases = model.Aliases.SetItem(alias, version) };
        }, cancellationToken);

        if (updated.Changed)
        {
            await audit.AppendAsync(updated.Value, actor, AuditAction.AliasSet, version, AuditLog.AliasMove(alias, previous, version),
                cancellationToken);
        }

        return new AliasChange(updated.Value, alias, previous, version);
    }

    /// <summary>Removes <paramref name="alias"/> (a no-op when it is not set); the caller has validated the input.</summary>
    public async Task<AliasChange> DeleteAsync(string modelName, string alias, string actor, CancellationToken cancellationToken)
    {
        int? previous = null;
        var updated = await models.UpdateAsync(modelName, actor, model =>
        {
            previous = model.Aliases.TryGetValue(alias, out var current) ? current : null;
            return previous is null ? null : model with { Aliases = model.Aliases.Remove(alias) };
        }, cancellationToken);

        if (updated.Changed)
        {
            await audit.AppendAsync(updated.Value, actor, AuditAction.AliasDeleted, previous, AuditLog.AliasMove(alias, previous, null),
                cancellationToken);
        }

        return new AliasChange(updated.Value, alias, previous, null);
    }
}
