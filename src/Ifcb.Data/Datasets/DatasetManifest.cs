using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ifcb.Data.Datasets;

/// <summary>One image of a stored dataset: class folder, file name, size in bytes and lowercase hex SHA-256 of its content.</summary>
public sealed record DatasetFile(string Class, string File, long Size, string Sha256);

/// <summary>
/// What a stored dataset contains. <see cref="Fingerprint"/> is the SHA-256 of the canonical listing (files ordered
/// ordinally by class then name, one <c>class/file size sha256</c> line each), so the same content gives the same
/// fingerprint whatever the upload order, parallelism or dataset name.
/// </summary>
public sealed record DatasetManifest(string Name, IReadOnlyList<string> Classes, IReadOnlyList<DatasetFile> Files, string Fingerprint)
{
    public const int FormatVersion = 1;

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

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

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(new ManifestDocument(FormatVersion, Name, Fingerprint, Classes, Files), Json);

    /// <exception cref="InvalidDataException">Not a manifest, or its fingerprint does not match its files.</exception>
    public static DatasetManifest FromJson(ReadOnlySpan<byte> json, string sourceName)
    {
        ManifestDocument? doc;
        try
        {
            doc = JsonSerializer.Deserialize<ManifestDocument>(json, Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{sourceName} is not a dataset manifest: {e.Message}", e);
        }
        if (doc is null || doc.Files is null || doc.Name is null || doc.Fingerprint is null)
            throw new InvalidDataException($"{sourceName} is not a dataset manifest (missing name, fingerprint or files).");
        var manifest = Create(doc.Name, doc.Files);
        if (manifest.Fingerprint != doc.Fingerprint)
            throw new InvalidDataException($"{sourceName}: fingerprint {doc.Fingerprint} does not match its file list ({manifest.Fingerprint}); the manifest was edited or damaged.");
        return manifest;
    }

    private sealed record ManifestDocument(
        [property: JsonPropertyName("formatVersion")] int FormatVersion,
        string Name,
        string Fingerprint,
        IReadOnlyList<string> Classes,
        IReadOnlyList<DatasetFile> Files);
}

/// <summary>Per-class counts and identity of a stored dataset.</summary>
public sealed record DatasetDescription(string Name, string Fingerprint, IReadOnlyDictionary<string, int> CountPerClass, int FileCount, long TotalBytes);

/// <summary>Result of an upload: the manifest written, and how many files were sent, already present, or removed as stale.</summary>
public sealed record DatasetUploadResult(DatasetManifest Manifest, int Uploaded, int AlreadyPresent, int RemovedStale);

/// <summary>A dataset downloaded to a local folder of class subfolders (use with <see cref="DatasetSpec.FromFolder"/>).</summary>
public sealed record MaterializedDataset(DatasetManifest Manifest, string LocalRoot, int Downloaded, int ReusedFromCache);
