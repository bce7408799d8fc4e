using System.Security.Cryptography;
using System.Text;

namespace Ifcb.Data.Datasets;

/// <summary>One image of a stored dataset: class folder, file name, size in bytes and lowercase hex SHA-256 of its content.</summary>
public sealed record DatasetFile(string Class, string File, long Size, string Sha256);

/// <summary>
/// What a stored dataset contains. <see cref="Fingerprint"/> is the SHA-256 of the canonical listing (files ordered
/// ordinally by class then name, one <c>class/file size sha256</c> line each), so the same content gives the same
/// fingerprint whatever the upload order, parallelism, dataset name or generation.
/// </summary>
public sealed record DatasetManifest(string Name, IReadOnlyList<string> Classes, IReadOnlyList<DatasetFile> Files, string Fingerprint)
{
    /// <summary>
    /// The stored generation this manifest describes (see <see cref="BlobDatasetStore"/>); null for a dataset stored
    /// before generations, or a manifest not (yet) stored. Not part of the fingerprint.
    /// </summary>
    public string? Generation { get; init; }

    /// <summary>Builds a manifest from files in any order; classes and files come out in canonical order.</summary>
    public static DatasetManifest Create(string name, IEnumerable<DatasetFile> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        var ordered = files.OrderBy(f => f.Class, StringComparer.Ordinal).ThenBy(f => f.File, StringComparer.Ordinal).ToList();
        var classes = ordered.Select(f => f.Class).Distinct(StringComparer.Ordinal).ToList();
        return new DatasetManifest(name, classes, ordered, ComputeFingerprint(ordered));
    }

    public static string ComputeFingerprint(IEnumerable<DatasetFile> files)
    {
        var canonical = new StringBuilder();
        foreach (var f in files.OrderBy(f => f.Class, StringComparer.Ordinal).ThenBy(f => f.File, StringComparer.Ordinal))
            canonical.Append(f.Class).Append('/').Append(f.File).Append(' ').Append(f.Size).Append(' ').Append(f.Sha256).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical.ToString())));
    }

    public IReadOnlyDictionary<string, int> CountPerClass =>
        Files.GroupBy(f => f.Class, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);

    public long TotalBytes => Files.Sum(f => f.Size);
}

/// <summary>Per-class counts and identity of a stored dataset.</summary>
public sealed record DatasetDescription(
    string Name, string Fingerprint, IReadOnlyDictionary<string, int> CountPerClass, int FileCount, long TotalBytes);

/// <summary>
/// Result of an upload: the manifest made current (its <see cref="DatasetManifest.Generation"/> is the new generation);
/// how many files had content not yet stored for this dataset (sent), or already stored (not sent again); and how many
/// files of the previous generation are not in this one (their images are removed after the grace period).
/// </summary>
public sealed record DatasetUploadResult(DatasetManifest Manifest, int Uploaded, int AlreadyPresent, int RemovedStale);

/// <summary>A dataset downloaded to a local folder of class subfolders (use with <see cref="DatasetSpec.FromFolder"/>).</summary>
public sealed record MaterializedDataset(DatasetManifest Manifest, string LocalRoot, int Downloaded, int ReusedFromCache);
