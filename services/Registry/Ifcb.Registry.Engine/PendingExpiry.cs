using Ifcb.Platform;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>
/// Settles abandoned uploads: a version still PENDING <see cref="RegistryOptions.PendingTimeout"/> after it was created
/// (its registry died mid-upload) expires to FAILED and loses whatever checkpoint bytes it left, either when it is next
/// read or by the periodic sweep.
/// </summary>
internal sealed class PendingExpiry(
    BlobDocumentStore store, RegistryOptions options, TimeProvider time, AuditLog audit, SearchIndex index)
{
    public bool IsStale(ModelVersion version) => version.MovedTo is null && IsStale(version.Status, version.CreatedAt);

    /// <summary>The same test on a version's status and creation time (as a search index entry has them).</summary>
    public bool IsStale(ModelVersionStatus status, DateTimeOffset createdAt) =>
        status == ModelVersionStatus.Pending && time.GetUtcNow() - createdAt > options.PendingTimeout;

    /// <summary>The version as it stands, after expiring it if it is an abandoned PENDING one.</summary>
    public async Task<ModelVersion> ExpireIfStaleAsync(ModelVersion version, CancellationToken cancellationToken) =>
        IsStale(version) ? await ExpireAsync(version, cancellationToken) ?? version : version;

    /// <summary>
    /// PENDING → FAILED for an abandoned upload, then deletes whatever checkpoint bytes it may have committed. Returns
    /// the FAILED version, or null if it had moved on or was deleted meanwhile (then someone else settled it).
    /// </summary>
    public async Task<ModelVersion?> ExpireAsync(ModelVersion stale, CancellationToken cancellationToken)
    {
        var reason = $"The checkpoint upload did not complete within {Durations.Describe(options.PendingTimeout)} (the registering " +
            "process stopped or lost its connection); register again — the same idempotency key may be reused.";
        var slot = VersionSlot.Of(stale);
        Updated<ModelVersion> updated;
        try
        {
            updated = await index.TrackAsync(slot.ModelName, slot.Version, () => store.UpdateAsync<ModelVersion>(slot.Document,
                version => IsStale(version)
                    ? version with
                    {
                        Status = ModelVersionStatus.Failed,
                        StatusMessage = reason,
                        UpdatedAt = time.GetUtcNow(),
                        UpdatedBy = ModelRegistry.SystemActor,
                    }
                    : null,
                slot.NotFound, cancellationToken).Updated(), _ => slot.Version, cancellationToken);
        }
        catch (IfcbException e) when (e.Kind == ErrorKind.NotFound)
        {
            return null;
        }

        if (!updated.Changed)
            return updated.Value;

        await store.DeleteAsync(updated.Value.CheckpointBlob, cancellationToken);
        await audit.AppendAsync(stale.ModelName, ModelRegistry.SystemActor, AuditAction.VersionFailed, stale.Version, null,
            [("reason", reason), ("expired", "true")], cancellationToken);
        return updated.Value;
    }

    /// <summary>
    /// The sweep: expires every stale PENDING version in the container and returns those it expired. Reads only version
    /// documents whose blob metadata does not already say READY or FAILED.
    /// </summary>
    public async Task<IReadOnlyList<ModelVersion>> ExpireStalePendingAsync(CancellationToken cancellationToken)
    {
        var candidates = (await store.ListBlobsAsync(RegistryLayout.ModelsRoot, withMetadata: true, cancellationToken))
            .Where(blob => !ModelVersion.IsSettled(blob.Metadata))
            .Select(blob => RegistryLayout.ParseVersionDocument(blob.Name))
            .OfType<(string Model, int Version)>()
            .ToList();
        var expired = new List<ModelVersion>();
        foreach (var batch in candidates.Chunk(options.ListReadConcurrency))
        {
            var versions = await Task.WhenAll(batch.Select(c =>
                store.ReadAsync<ModelVersion>(RegistryLayout.VersionDocument(c.Model, c.Version), cancellationToken)));
            foreach (var stored in versions)
            {
                if (stored is null)
                    continue;

                if (stored.Value.Status != ModelVersionStatus.Pending)
                {
                    // Written before the status was mirrored into metadata: rewrite it once (same content, now with
                    // metadata) so later sweeps skip it. If-Match: a concurrent change wins and carries metadata anyway.
                    await store.TryReplaceAsync(VersionSlot.Of(stored.Value).Document, stored.Value, stored.ETag, cancellationToken);
                }
                else if (IsStale(stored.Value) && await ExpireAsync(stored.Value, cancellationToken) is { } failed)
                {
                    expired.Add(failed);
                }
            }
        }

        return expired;
    }
}
