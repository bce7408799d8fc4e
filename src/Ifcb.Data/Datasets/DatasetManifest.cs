using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization;

namespace Ifcb.Data.Datasets;

/// <summary>One image of a stored dataset: class folder, file name, size in bytes and lowercase hex SHA-256 of its content.</summary>
public sealed record DatasetFile(string Class, string File, long Size, string Sha256)
{
    /// <summary>The shard that holds it (its SHA-256) in a sharded dataset; null in the layouts before shards.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Shard { get; init; }

    /// <summary>Where its bytes start in <see cref="Shard"/>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? Offset { get; init; }

    [JsonIgnore]
    public string Key => $"{Class}/{File}";

    /// <summary>The canonical order of a dataset's files: ordinal by class, then by file name.</summary>
    public static int CompareKeys(string classA, string fileA, string classB, string fileB) =>
        string.CompareOrdinal(classA, classB) is var byClass and not 0 ? byClass : string.CompareOrdinal(fileA, fileB);
}

/// <summary>
/// Computes a fingerprint (see <see cref="DatasetManifest"/>) from files given in canonical order, one at a time, so
/// that a listing of any size is fingerprinted without being held in memory.
/// </summary>
public sealed class DatasetFingerprint : IDisposable
{
    private readonly IncrementalHash _sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private string? _lastClass;
    private string? _lastFile;

    /// <exception cref="InvalidDataException">Out of canonical order, or the same file twice.</exception>
    public void Add(DatasetFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (_lastClass is not null)
        {
            var order = DatasetFile.CompareKeys(_lastClass, _lastFile!, file.Class, file.File);
            if (order >= 0)
                throw new InvalidDataException(order == 0
                    ? $"{file.Key} occurs twice in the dataset's listing."
                    : $"{file.Key} comes after {_lastClass}/{_lastFile} in the dataset's listing, which must be in canonical order.");
        }
        _lastClass = file.Class;
        _lastFile = file.File;
        _sha.AppendData(Encoding.UTF8.GetBytes($"{file.Class}/{file.File} {file.Size} {file.Sha256}\n"));
    }

    public string Complete() => Convert.ToHexStringLower(_sha.GetHashAndReset());

    public void Dispose() => _sha.Dispose();
}

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
        using var fingerprint = new DatasetFingerprint();
        foreach (var f in files.OrderBy(f => f.Class, StringComparer.Ordinal).ThenBy(f => f.File, StringComparer.Ordinal))
            fingerprint.Add(f);
        return fingerprint.Complete();
    }

    public IReadOnlyDictionary<string, int> CountPerClass =>
        Files.GroupBy(f => f.Class, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);

    public long TotalBytes => Files.Sum(f => f.Size);
}

/// <summary>
/// Per-class counts and identity of a stored dataset, without its listing: what <c>dataset describe</c> shows, read
/// from the manifest's summary.
/// </summary>
public sealed record DatasetDescription(
    string Name, string Fingerprint, IReadOnlyDictionary<string, int> CountPerClass, int FileCount, long TotalBytes)
{
    /// <summary>The generation described; null for a dataset stored before generations.</summary>
    public string? Generation { get; init; }

    /// <summary>Shards it is stored in; 0 for a layout before shards.</summary>
    public int Shards { get; init; }

    public static DatasetDescription Of(DatasetManifest manifest) =>
        new(manifest.Name, manifest.Fingerprint, manifest.CountPerClass, manifest.Files.Count, manifest.TotalBytes)
        {
            Generation = manifest.Generation,
        };
}

/// <summary>
/// Result of an upload: the dataset made current (its <see cref="DatasetDescription.Generation"/> is the new
/// generation); how many files went into shards not stored yet (sent), or into shards the dataset already stored (not
/// sent again); and the shards of each kind.
/// </summary>
public sealed record DatasetUploadResult(DatasetDescription Dataset, int Uploaded, int AlreadyPresent)
{
    public int ShardsUploaded { get; init; }
    public int ShardsPresent { get; init; }
}
