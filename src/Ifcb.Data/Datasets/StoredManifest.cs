using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ifcb.Data.Datasets;

/// <summary>
/// A generation that stopped being current at <see cref="RetiredAt"/>; its images are kept until RetiredAt + the grace
/// period.
/// </summary>
public sealed record RetiredGeneration(string Generation, DateTimeOffset RetiredAt);

/// <summary>
/// The JSON of a dataset's <c>manifest.json</c> and of its per-generation manifests (see <see cref="BlobDatasetStore"/>).
/// Format 1 is the layout before generations (images at <c>{class}/{file}</c>, no generation); format 2 adds the
/// generation, its commit time, the generations retired within the grace period, and the tombstone flag that
/// <see cref="BlobDatasetStore.DeleteAsync"/> writes in place of a deleted dataset's manifest.
/// </summary>
internal sealed record StoredManifest
{
    public const int LegacyFormat = 1;
    public const int GenerationsFormat = 2;

    /// <summary>The generation id a format-1 manifest stands for in <see cref="Retired"/> lists: its images are the legacy blobs.</summary>
    public const string LegacyGeneration = "legacy";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public int FormatVersion { get; init; } = GenerationsFormat;
    public required string Name { get; init; }
    public required string Fingerprint { get; init; }
    public IReadOnlyList<string> Classes { get; init; } = [];
    public IReadOnlyList<DatasetFile> Files { get; init; } = [];

    /// <summary>Null in a format-1 manifest and in a tombstone.</summary>
    public string? Generation { get; init; }

    public DateTimeOffset? CommittedAt { get; init; }
    public IReadOnlyList<RetiredGeneration> Retired { get; init; } = [];
    public bool Deleted { get; init; }

    /// <summary>The generation this manifest makes current: its id, or <see cref="LegacyGeneration"/>; null for a tombstone.</summary>
    [JsonIgnore]
    public string? CurrentGeneration => Deleted ? null : Generation ?? LegacyGeneration;

    public static StoredManifest ForGeneration(DatasetManifest manifest, string generation, DateTimeOffset committedAt,
        IReadOnlyList<RetiredGeneration> retired) => new()
        {
            Name = manifest.Name, Fingerprint = manifest.Fingerprint, Classes = manifest.Classes, Files = manifest.Files,
            Generation = generation, CommittedAt = committedAt, Retired = retired,
        };

    public static StoredManifest Tombstone(string name, IReadOnlyList<RetiredGeneration> retired) => new()
    {
        Name = name, Fingerprint = DatasetManifest.ComputeFingerprint([]), Retired = retired, Deleted = true,
    };

    /// <summary>The content, for readers (<see cref="DatasetManifest.Generation"/> null for the legacy layout).</summary>
    public DatasetManifest ToManifest() => DatasetManifest.Create(Name, Files) with { Generation = Generation };

    /// <summary>The retired generations still inside the grace period at <paramref name="now"/>, plus this one retired now.</summary>
    public IReadOnlyList<RetiredGeneration> RetiredAfterReplacing(DateTimeOffset now, TimeSpan grace)
    {
        var kept = Retired.Where(r => r.RetiredAt > now - grace).ToList();
        if (CurrentGeneration is { } current)
            kept.Add(new RetiredGeneration(current, now));
        return kept;
    }

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, Json);

    /// <exception cref="InvalidDataException">
    /// Not a manifest, an unknown format, or a fingerprint that does not match the files.
    /// </exception>
    public static StoredManifest Parse(ReadOnlySpan<byte> json, string sourceName)
    {
        StoredManifest? stored;
        try
        {
            stored = JsonSerializer.Deserialize<StoredManifest>(json, Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{sourceName} is not a dataset manifest: {e.Message}", e);
        }
        if (stored is null || stored.Files is null || stored.Name is null || stored.Fingerprint is null || stored.Retired is null)
            throw new InvalidDataException($"{sourceName} is not a dataset manifest (missing name, fingerprint or files).");
        if (stored.FormatVersion is not (LegacyFormat or GenerationsFormat))
            throw new InvalidDataException(
                $"{sourceName} has manifest format {stored.FormatVersion}; this version reads formats 1 and 2. Update the platform.");
        var computed = DatasetManifest.ComputeFingerprint(stored.Files);
        if (computed != stored.Fingerprint)
            throw new InvalidDataException($"{sourceName}: fingerprint {stored.Fingerprint} does not match its file list ({computed}); " +
                "the manifest was edited or damaged.");
        return stored;
    }
}
