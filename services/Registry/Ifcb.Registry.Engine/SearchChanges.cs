using Azure;
using Ifcb.Platform;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>
/// <c>search/changes.json</c>: a small blob that every writer of a search index or a model document rewrites right after
/// its write, before its call returns. Its ETag therefore changes after every such write, so a search that read the
/// ETag before listing the indexes (and before reading model documents) learns from one request whether anything it
/// listed or read may have changed since: if the ETag is the same, it can reuse that listing and those documents.
/// </summary>
/// <remarks>
/// The touch is a second write, so it can be lost: the writer dies (or storage fails) between its write and the touch.
/// Readers therefore trust an unchanged ETag for at most <see cref="RegistryOptions.SearchSnapshotMaxAge"/>; after
/// that they list again. A lost touch can make searches miss a change for at most that long; a change whose call
/// returned is never missed. Registry processes of an earlier build do not touch it: after a rolling upgrade from
/// such a build, searches can lag behind their writes by up to that age until the upgrade completes.
/// </remarks>
internal sealed class SearchChanges(BlobDocumentStore store)
{
    private sealed record Touch(string Token);

    /// <summary>Rewrites the blob (a new ETag); best effort, never failing the caller's write (see the remarks).</summary>
    public async Task TouchAsync()
    {
        try
        {
            await store.PutAsync(RegistryLayout.SearchChanges, new Touch(Guid.NewGuid().ToString("N")), CancellationToken.None);
        }
        catch (Exception e) when (e is RequestFailedException or IfcbException)
        {
            // Readers re-list after SearchSnapshotMaxAge at the latest.
        }
    }

    /// <summary>The blob's ETag now; null when no writer has touched it yet.</summary>
    public async Task<ETag?> ReadAsync(CancellationToken cancellationToken)
    {
        try
        {
            var properties = await store.Container.GetBlobClient(RegistryLayout.SearchChanges)
                .GetPropertiesAsync(cancellationToken: cancellationToken);
            return properties.Value.ETag;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }
}
