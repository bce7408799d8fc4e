using Azure;

namespace Ifcb.Data.Datasets;

/// <summary>
/// A dataset name as an upload found it when it began (no dataset, a tombstone, or a generation, with its ETag). The
/// upload becomes current only if the name is still in exactly this state, so of two overlapping uploads one fails.
/// </summary>
public sealed class DatasetHead
{
    internal DatasetHead(string name, ETag? etag, StoredManifest? stored)
    {
        Name = name;
        ETag = etag;
        Stored = stored;
    }

    public string Name { get; }

    /// <summary>The generation that was current; null when the dataset did not exist (or was deleted).</summary>
    public string? Generation => Stored?.CurrentGeneration;

    internal ETag? ETag { get; }
    internal StoredManifest? Stored { get; }
}
