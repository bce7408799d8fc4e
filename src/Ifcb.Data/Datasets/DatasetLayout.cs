using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;
using Ifcb.Platform;

namespace Ifcb.Data.Datasets;

/// <summary>
/// The blob names of the dataset layout under <c>datasets/{name}/</c> (described on <see cref="BlobDatasetStore"/>),
/// the metadata written with them, and which generation a blob belongs to.
/// </summary>
internal static partial class DatasetLayout
{
    public const string Prefix = "datasets/";
    public const string ManifestFileName = "manifest.json";
    public const string HashMetadataKey = "sha256";
    public const string StateMetadataKey = "state";
    public const string DeletedState = "deleted";
    public const string CurrentState = "current";
    public const string GenerationMetadataKey = "generation";
    private const string ObjectsFolder = "objects/";
    private const string GenerationsFolder = "generations/";
    private const string GenerationSuffix = ".json";
    private const string ShardsFolder = "shards/";
    private const string ShardSuffix = ".tar";
    private const string ShardIndexSuffix = ".index.json";

    public static string Root(string dataset) => $"{Prefix}{ResourceName.ValidateDatasetName(dataset)}/";

    public static string ManifestBlobName(string dataset) => $"{Root(dataset)}{ManifestFileName}";

    public static string ObjectBlobName(string dataset, string sha256) =>
        Sha256Pattern().IsMatch(sha256)
            ? $"{Root(dataset)}{ObjectsFolder}{sha256}"
            : throw new ArgumentException($"'{sha256}' is not a SHA-256 (64 lowercase hex digits).", nameof(sha256));

    public static string GenerationBlobName(string dataset, string generation) =>
        GenerationPattern().IsMatch(generation)
            ? $"{Root(dataset)}{GenerationsFolder}{generation}{GenerationSuffix}"
            : throw new ArgumentException($"'{generation}' is not a dataset generation id.", nameof(generation));

    /// <summary>A shard: a tar of images, named by its SHA-256.</summary>
    public static string ShardBlobName(string dataset, string sha256) => $"{Root(dataset)}{ShardsFolder}{CheckSha256(sha256)}{ShardSuffix}";

    /// <summary>A shard's index (<see cref="Shards.ShardIndex"/>), beside it.</summary>
    public static string ShardIndexBlobName(string dataset, string sha256) =>
        $"{Root(dataset)}{ShardsFolder}{CheckSha256(sha256)}{ShardIndexSuffix}";

    /// <summary>The shard a shard or shard-index blob named relative to its dataset's <see cref="Root"/> belongs to.</summary>
    public static bool IsShard(string relativeName, [NotNullWhen(true)] out string? sha256)
    {
        sha256 = null;
        if (!relativeName.StartsWith(ShardsFolder, StringComparison.Ordinal))
            return false;
        var name = relativeName[ShardsFolder.Length..];
        var hash = name.EndsWith(ShardIndexSuffix, StringComparison.Ordinal) ? name[..^ShardIndexSuffix.Length]
            : name.EndsWith(ShardSuffix, StringComparison.Ordinal) ? name[..^ShardSuffix.Length] : null;
        sha256 = hash is not null && Sha256Pattern().IsMatch(hash) ? hash : null;
        return sha256 is not null;
    }

    private static string CheckSha256(string sha256) =>
        Sha256Pattern().IsMatch(sha256) ? sha256 : throw new ArgumentException($"'{sha256}' is not a SHA-256 (64 lowercase hex digits).",
            nameof(sha256));

    public static string ImagePath(string dataset, string className, string fileName) =>
        $"{Root(dataset)}{ResourceName.ValidateClassName(className)}/{ResourceName.ValidateFileName(fileName)}";

    /// <summary>The content hash of an object blob named relative to its dataset's <see cref="Root"/>; false for other blobs.</summary>
    public static bool IsObject(string relativeName, [NotNullWhen(true)] out string? sha256)
    {
        sha256 = relativeName.StartsWith(ObjectsFolder, StringComparison.Ordinal) && relativeName[ObjectsFolder.Length..] is var hash
            && Sha256Pattern().IsMatch(hash) ? hash : null;
        return sha256 is not null;
    }

    /// <summary>
    /// The generation of a generation manifest named relative to its dataset's <see cref="Root"/>; false for other blobs.
    /// </summary>
    public static bool IsGeneration(string relativeName, [NotNullWhen(true)] out string? generation)
    {
        generation = relativeName.StartsWith(GenerationsFolder, StringComparison.Ordinal)
            && relativeName.EndsWith(GenerationSuffix, StringComparison.Ordinal)
            && relativeName[GenerationsFolder.Length..^GenerationSuffix.Length] is var id && GenerationPattern().IsMatch(id) ? id : null;
        return generation is not null;
    }

    [GeneratedRegex("^[0-9]{8}T[0-9]{9}Z-[0-9a-f]{8}$")]
    private static partial Regex GenerationPattern();

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex Sha256Pattern();
}
