using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace Ifcb.Data.Datasets.Shards;

/// <summary>
/// One image in a shard: its class and file name, where its bytes start in the shard (<see cref="Offset"/>, past its
/// tar header) and how many there are, and the SHA-256 of those bytes (lowercase hex).
/// </summary>
public sealed record ShardMember(string Class, string File, long Offset, long Size, string Sha256)
{
    /// <summary>The member's name in the tar and its key in a dataset: <c>class/file</c>.</summary>
    [JsonIgnore]
    public string Key => $"{Class}/{File}";

    public DatasetFile ToDatasetFile(string shard) => new(Class, File, Size, Sha256) { Shard = shard, Offset = Offset };
}

/// <summary>
/// The index of one shard, stored beside it: the shard's SHA-256 and length, and its members in canonical order
/// (ordinal by class, then file). A reader can fetch any member with one ranged read, and checks every member against
/// its hash.
/// </summary>
public sealed partial record ShardIndex
{
    public const int CurrentFormat = 1;

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public int FormatVersion { get; init; } = CurrentFormat;
    public required string Shard { get; init; }
    public required long Bytes { get; init; }
    public required IReadOnlyList<ShardMember> Members { get; init; }

    [JsonIgnore]
    public long MemberBytes => Members.Sum(m => m.Size);

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, Json);

    /// <summary>Reads and checks an index: format, the shard it names, members in strictly increasing order, bytes in range.</summary>
    /// <exception cref="InvalidDataException">Not an index of <paramref name="expectedShard"/>, or an inconsistent one.</exception>
    public static ShardIndex Parse(ReadOnlySpan<byte> json, string expectedShard, string sourceName)
    {
        ShardIndex? index;
        try
        {
            index = JsonSerializer.Deserialize<ShardIndex>(json, Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{sourceName} is not a shard index: {e.Message}", e);
        }
        if (index?.Members is null || index.Shard is null)
            throw new InvalidDataException($"{sourceName} is not a shard index (missing shard or members).");
        if (index.FormatVersion != CurrentFormat)
            throw new InvalidDataException(
                $"{sourceName} has shard index format {index.FormatVersion}; this version reads format {CurrentFormat}. " +
                "Update the platform.");
        if (index.Shard != expectedShard)
            throw new InvalidDataException($"{sourceName} is the index of shard {index.Shard}, not of {expectedShard}.");
        index.Validate(sourceName);
        return index;
    }

    /// <summary>Members in strictly increasing canonical order (so no duplicates), each inside the shard, none overlapping.</summary>
    /// <exception cref="InvalidDataException">Which member breaks which rule.</exception>
    public void Validate(string sourceName)
    {
        if (!Sha256Pattern().IsMatch(Shard))
            throw new InvalidDataException($"{sourceName}: '{Shard}' is not a SHA-256.");
        ShardMember? previous = null;
        foreach (var member in Members)
        {
            if (member.Class is null || member.File is null || member.Sha256 is null || !Sha256Pattern().IsMatch(member.Sha256))
                throw new InvalidDataException($"{sourceName}: a member lacks its class, file or SHA-256.");
            if (previous is not null)
            {
                var order = DatasetFile.CompareKeys(previous.Class, previous.File, member.Class, member.File);
                if (order == 0)
                    throw new InvalidDataException($"{sourceName}: member {member.Key} occurs twice.");
                if (order > 0)
                    throw new InvalidDataException(
                        $"{sourceName}: member {member.Key} comes after {previous.Key}; members must be in order.");
                if (member.Offset < previous.Offset + previous.Size)
                    throw new InvalidDataException($"{sourceName}: member {member.Key} overlaps {previous.Key}.");
            }
            if (member.Offset < 0 || member.Size < 0 || member.Offset + member.Size > Bytes)
                throw new InvalidDataException($"{sourceName}: member {member.Key} ({member.Size} bytes at {member.Offset}) lies outside " +
                    $"the shard's {Bytes} bytes.");
            previous = member;
        }
    }


    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex Sha256Pattern();
}
