using System.Runtime.CompilerServices;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Ifcb.Platform;

namespace Ifcb.Data.Datasets;

/// <summary>
/// The manifests of the datasets in a container: <c>manifest.json</c> (the current generation or a tombstone, read and
/// replaced with its ETag) and the generation manifests, written once.
/// </summary>
internal sealed class DatasetManifests(BlobContainerClient container)
{
    private static readonly BlobHttpHeaders JsonHeaders = new() { ContentType = "application/json" };

    /// <summary>The dataset's manifest.json and its ETag; both null when there is none.</summary>
    /// <exception cref="InvalidDataException">manifest.json is damaged.</exception>
    public async Task<(StoredManifest? Stored, ETag? ETag)> ReadAsync(string name, CancellationToken cancellationToken)
    {
        var blobName = DatasetLayout.ManifestBlobName(name);
        try
        {
            var content = await container.GetBlobClient(blobName).DownloadContentAsync(cancellationToken).ConfigureAwait(false);
            var stored = StoredManifest.Parse(content.Value.Content.ToMemory().Span, $"{container.Name}/{blobName}");
            return (stored, content.Value.Details.ETag);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return (null, null);
        }
    }

    /// <summary>The dataset's current manifest.</summary>
    /// <exception cref="KeyNotFoundException">No dataset of that name (or only its tombstone).</exception>
    public async Task<StoredManifest> ReadCurrentAsync(string name, CancellationToken cancellationToken)
    {
        var (stored, _) = await ReadAsync(name, cancellationToken).ConfigureAwait(false);
        return stored is { Deleted: false }
            ? stored
            : throw new KeyNotFoundException(
                $"Dataset \"{name}\" does not exist in container \"{container.Name}\"; upload it first or check the name.");
    }

    /// <summary>
    /// Makes <paramref name="stored"/> (a generation or a tombstone) the dataset's manifest.json if that still has
    /// <paramref name="ifMatch"/> (null: if there is none). Its state goes into the blob's metadata too, so that listing
    /// the datasets does not read every manifest.
    /// </summary>
    /// <exception cref="RequestFailedException">404, 409 or 412: manifest.json changed since it was read.</exception>
    public Task ReplaceAsync(string name, StoredManifest stored, ETag? ifMatch, CancellationToken cancellationToken)
    {
        var metadata = stored.CurrentGeneration is { } generation
            ? new Dictionary<string, string>
            {
                [DatasetLayout.StateMetadataKey] = DatasetLayout.CurrentState, [DatasetLayout.GenerationMetadataKey] = generation,
            }
            : new Dictionary<string, string> { [DatasetLayout.StateMetadataKey] = DatasetLayout.DeletedState };
        var conditions = ifMatch is { } etag
            ? new BlobRequestConditions { IfMatch = etag }
            : new BlobRequestConditions { IfNoneMatch = ETag.All };
        return container.GetBlobClient(DatasetLayout.ManifestBlobName(name)).UploadAsync(BinaryData.FromBytes(stored.ToJson()),
            new BlobUploadOptions { HttpHeaders = JsonHeaders, Metadata = metadata, Conditions = conditions }, cancellationToken);
    }

    /// <summary>Writes a generation's own manifest (without the retired list), once: it fails if the blob exists.</summary>
    /// <returns>The blob's name.</returns>
    public async Task<string> CreateGenerationAsync(string name, string generation, StoredManifest stored,
        CancellationToken cancellationToken)
    {
        var blob = container.GetBlobClient(DatasetLayout.GenerationBlobName(name, generation));
        var options = new BlobUploadOptions
        {
            HttpHeaders = JsonHeaders, Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
        };
        var content = BinaryData.FromBytes((stored with { Retired = [] }).ToJson());
        await blob.UploadAsync(content, options, cancellationToken).ConfigureAwait(false);
        return blob.Name;
    }

    /// <summary>A generation's own manifest; null when it is gone.</summary>
    /// <exception cref="InvalidDataException">The generation manifest is damaged.</exception>
    public async Task<StoredManifest?> ReadGenerationAsync(string name, string generation, CancellationToken cancellationToken)
    {
        var blobName = DatasetLayout.GenerationBlobName(name, generation);
        try
        {
            var content = await container.GetBlobClient(blobName).DownloadContentAsync(cancellationToken).ConfigureAwait(false);
            return StoredManifest.Parse(content.Value.Content.ToMemory().Span, blobName);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>
    /// Names of the current datasets (those with a manifest that is not a tombstone), ordinal order. An absent
    /// container has none.
    /// </summary>
    public async Task<IReadOnlyList<string>> ListCurrentAsync(CancellationToken cancellationToken)
    {
        var names = new List<string>();
        await foreach (var name in ListNamesAsync(cancellationToken).ConfigureAwait(false))
        {
            try
            {
                var properties = await container.GetBlobClient(DatasetLayout.ManifestBlobName(name))
                    .GetPropertiesAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
                var metadata = properties.Value.Metadata;
                if (!(metadata.TryGetValue(DatasetLayout.StateMetadataKey, out var state) && state == DatasetLayout.DeletedState))
                    names.Add(name);
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
            }
        }
        return names.Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>Every valid dataset name with any blob under it (current, deleted, or an upload that never finished).</summary>
    public async IAsyncEnumerable<string> ListNamesAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        const string prefix = DatasetLayout.Prefix;
        var options = new GetBlobsByHierarchyOptions { Prefix = prefix, Delimiter = "/" };
        var pages = container.GetBlobsByHierarchyAsync(options, cancellationToken).ConfigureAwait(false);
        await using var items = pages.GetAsyncEnumerator();
        while (true)
        {
            try
            {
                if (!await items.MoveNextAsync())
                    yield break;
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                yield break; // no container yet
            }
            if (items.Current is { IsPrefix: true } item && item.Prefix[prefix.Length..].TrimEnd('/') is var name
                && ResourceName.IsValidDatasetName(name))
                yield return name;
        }
    }
}
