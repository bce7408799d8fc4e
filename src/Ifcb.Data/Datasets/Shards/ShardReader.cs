using System.Formats.Tar;
using System.Security.Cryptography;

namespace Ifcb.Data.Datasets.Shards;

/// <summary>
/// Reads a shard (see <see cref="ShardWriter"/>) front to back, as it downloads, checking it against its index: every
/// tar entry must be the index's next member (same name, offset and size) with content of the member's SHA-256, and
/// nothing may follow the last one. A damaged, truncated or tampered shard is an <see cref="InvalidDataException"/>
/// naming the shard and the member, never wrong bytes.
/// </summary>
public static class ShardReader
{
    /// <summary>Yields each member with its content, in order, as the stream delivers them.</summary>
    /// <exception cref="InvalidDataException">The shard does not match its index, or ends early.</exception>
    public static IEnumerable<(ShardMember Member, byte[] Content)> ReadAll(Stream shard, ShardIndex index)
    {
        ArgumentNullException.ThrowIfNull(shard);
        ArgumentNullException.ThrowIfNull(index);
        var counting = new CountingReadStream(shard);
        using var tar = new TarReader(counting, leaveOpen: true);
        var name = $"shard {index.Shard[..12]}…";
        foreach (var member in index.Members)
        {
            TarEntry? entry;
            try
            {
                entry = tar.GetNextEntry(copyData: false);
            }
            catch (Exception e) when (e is EndOfStreamException or FormatException or InvalidDataException)
            {
                throw new InvalidDataException($"{name} is damaged before member {member.Key}: {e.Message}", e);
            }
            if (entry is null)
                throw new InvalidDataException($"{name} ends before member {member.Key}: the shard is truncated.");
            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || entry.Name != member.Key)
                throw new InvalidDataException($"{name} has '{entry.Name}' where its index has {member.Key}.");
            if (entry.Length != member.Size || counting.Position != member.Offset)
                throw new InvalidDataException($"{name}: member {member.Key} has {entry.Length} bytes at {counting.Position}; " +
                    $"the index says {member.Size} at {member.Offset}.");
            var content = new byte[member.Size];
            try
            {
                entry.DataStream?.ReadExactly(content);
            }
            catch (EndOfStreamException e)
            {
                throw new InvalidDataException($"{name} ends inside member {member.Key}: the shard is truncated.", e);
            }
            Verify(content, member, name);
            yield return (member, content);
        }
        TarEntry? extra;
        try
        {
            extra = tar.GetNextEntry(copyData: false);
        }
        catch (Exception e) when (e is EndOfStreamException or FormatException or InvalidDataException)
        {
            throw new InvalidDataException($"{name} is damaged after its last member: {e.Message}", e);
        }
        if (extra is not null)
            throw new InvalidDataException($"{name} has a member its index does not list: '{extra.Name}'.");
    }

    /// <summary>Checks one member's content against its SHA-256.</summary>
    /// <exception cref="InvalidDataException">Names the member, the shard and both hashes.</exception>
    public static void Verify(ReadOnlySpan<byte> content, ShardMember member, string shardName)
    {
        var actual = Convert.ToHexStringLower(SHA256.HashData(content));
        if (actual != member.Sha256)
            throw new InvalidDataException($"{shardName}: member {member.Key} has SHA-256 {actual} but its index says " +
                $"{member.Sha256}; the stored shard was damaged or altered. Re-upload the dataset.");
    }

    /// <summary>A read-only pass-through that counts the bytes read (the tar's position on an unseekable download).</summary>
    private sealed class CountingReadStream(Stream inner) : Stream
    {
        private long _position;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var read = inner.Read(buffer);
            _position += read;
            return read;
        }
    }
}
