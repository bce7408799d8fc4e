using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ifcb.Data.Datasets;

/// <summary>
/// A generation that stopped being current at <see cref="RetiredAt"/>; its images are kept until RetiredAt + the grace
/// period.
/// </summary>
public sealed record RetiredGeneration(string Generation, DateTimeOffset RetiredAt);

/// <summary>One shard of a sharded generation: its SHA-256, length and number of images.</summary>
public sealed record StoredShard(string Sha256, long Bytes, int Members);

/// <summary>
/// The JSON of a dataset's <c>manifest.json</c> and of its per-generation manifests (see <see cref="BlobDatasetStore"/>).
/// Format 1 is the layout before generations (images at <c>{class}/{file}</c>, no generation); format 2 adds the
/// generation, its commit time, the generations retired within the grace period, and the tombstone flag that
/// <see cref="BlobDatasetStore.DeleteAsync"/> writes in place of a deleted dataset's manifest; both list every file.
/// Format 3 stores the images in shards: the manifest lists the shards and a summary (counts per class, images, bytes)
/// and no files, so it stays small at a million images; the listing is in the shards' indexes.
/// </summary>
internal sealed record StoredManifest
{
    public const int LegacyFormat = 1;
    public const int GenerationsFormat = 2;
    public const int ShardsFormat = 3;

    /// <summary>The generation id a format-1 manifest stands for in <see cref="Retired"/> lists: its images are the legacy blobs.</summary>
    public const string LegacyGeneration = "legacy";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public int FormatVersion { get; init; } = ShardsFormat;
    public required string Name { get; init; }
    public required string Fingerprint { get; init; }
    public IReadOnlyList<string> Classes { get; init; } = [];
    public IReadOnlyList<DatasetFile> Files { get; init; } = [];

    /// <summary>Null in a format-1 manifest and in a tombstone.</summary>
    public string? Generation { get; init; }

    public DateTimeOffset? CommittedAt { get; init; }
    public IReadOnlyList<RetiredGeneration> Retired { get; init; } = [];
    public bool Deleted { get; init; }

    /// <summary>Format 3: the shards, in canonical order of their images.</summary>
    public IReadOnlyList<StoredShard>? Shards { get; init; }

    /// <summary>Format 3: images per class (the counts <c>dataset describe</c> shows).</summary>
    public IReadOnlyDictionary<string, int>? ClassCounts { get; init; }

    /// <summary>Format 3: total bytes of the images.</summary>
    public long? Bytes { get; init; }

    [JsonIgnore]
    public bool IsSharded => FormatVersion == ShardsFormat && !Deleted;

    /// <summary>The generation this manifest makes current: its id, or <see cref="LegacyGeneration"/>; null for a tombstone.</summary>
    [JsonIgnore]
    public string? CurrentGeneration => Deleted ? null : Generation ?? LegacyGeneration;

    public static StoredManifest ForGeneration(DatasetManifest manifest, string generation, DateTimeOffset committedAt,
        IReadOnlyList<RetiredGeneration> retired) => new()
        {
            Name = manifest.Name, Fingerprint = manifest.Fingerprint, Classes = manifest.Classes, Files = manifest.Files,
            Generation = generation, CommittedAt = committedAt, Retired = retired,
        };

    public static StoredManifest ForShards(string name, string fingerprint, IReadOnlyDictionary<string, int> classCounts, long bytes,
        IReadOnlyList<StoredShard> shards) => new()
        {
            Name = name, Fingerprint = fingerprint, Classes = [.. classCounts.Keys.Order(StringComparer.Ordinal)],
            ClassCounts = classCounts, Bytes = bytes, Shards = shards,
        };

    /// <summary>This (sharded) manifest as generation <paramref name="generation"/>, committed now.</summary>
    public StoredManifest AsGeneration(string generation, DateTimeOffset committedAt, IReadOnlyList<RetiredGeneration> retired) =>
        this with { Generation = generation, CommittedAt = committedAt, Retired = retired };

    public static StoredManifest Tombstone(string name, IReadOnlyList<RetiredGeneration> retired) => new()
    {
        Name = name, Fingerprint = DatasetManifest.ComputeFingerprint([]), Retired = retired, Deleted = true,
    };

    /// <summary>
    /// The content of a manifest that lists its files (formats 1 and 2), for readers (<see cref="DatasetManifest.Generation"/>
    /// null for the legacy layout). A sharded manifest's listing is in its shards' indexes.
    /// </summary>
    public DatasetManifest ToManifest() => IsSharded
        ? throw new InvalidOperationException("A sharded manifest's listing is read from its shards' indexes.")
        : DatasetManifest.Create(Name, Files) with { Generation = Generation };

    /// <summary>Counts and identity, from the summary (format 3) or the listing (formats 1 and 2).</summary>
    public DatasetDescription Describe() => IsSharded
        ? new DatasetDescription(Name, Fingerprint, ClassCounts ?? new Dictionary<string, int>(), ClassCounts?.Values.Sum() ?? 0,
            Bytes ?? 0)
        {
            Generation = Generation, Shards = Shards?.Count ?? 0,
        }
        : DatasetDescription.Of(ToManifest());

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
        if (stored.FormatVersion is not (LegacyFormat or GenerationsFormat or ShardsFormat))
            throw new InvalidDataException(
                $"{sourceName} has manifest format {stored.FormatVersion}; this version reads formats 1 to 3. Update the platform.");
        if (stored.IsSharded)
        {
            // The fingerprint is checked against the shards' indexes when the listing is read.
            if (stored.Shards is null || stored.ClassCounts is null || stored.Bytes is null || stored.Generation is null)
                throw new InvalidDataException($"{sourceName} is a sharded manifest without its shards, summary or generation.");
            return stored;
        }
        var computed = DatasetManifest.ComputeFingerprint(stored.Files);
        if (computed != stored.Fingerprint)
            throw new InvalidDataException($"{sourceName}: fingerprint {stored.Fingerprint} does not match its file list ({computed}); " +
                "the manifest was edited or damaged.");
        return stored;
    }
}
