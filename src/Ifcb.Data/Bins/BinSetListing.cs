namespace Ifcb.Data.Bins;

/// <summary>One file of a bin set: its name (<c>{lid}.adc|.hdr|.roi</c>), size in bytes and lowercase hex SHA-256.</summary>
public sealed record BinSetFile(string File, long Size, string Sha256);

/// <summary>
/// A bin set's listing, written last by its upload: the set exists exactly when this does. <see cref="ClaimedBy"/> is
/// the RUN job that owns the set (null until a run claims it).
/// </summary>
public sealed record BinSetListing(string Id, string Name, DateTimeOffset CreatedAt, IReadOnlyList<BinSetFile> Files)
{
    public string? ClaimedBy { get; init; }
    public DateTimeOffset? ClaimedAt { get; init; }
    public long Bytes => Files.Sum(f => f.Size);
}
