using System.Buffers.Binary;
using System.Text;

namespace Ifcb.Models.Checkpoints;

/// <summary>
/// Where a stored (uncompressed) zip entry's bytes lie in a seekable zip, so that they can be read in place:
/// <c>ZipArchiveEntry.Open()</c> only gives a forward-only stream, but the checkpoint's <c>state_dict.pth</c> is itself a
/// zip that needs random access. Reads only the central directory (bounded) and the entry's local header.
/// </summary>
internal static class StoredZipEntry
{
    private const uint EndOfDirectory = 0x06054b50;
    private const uint Zip64EndLocator = 0x07064b50;
    private const uint Zip64End = 0x06064b50;
    private const uint DirectoryEntry = 0x02014b50;
    private const uint LocalHeader = 0x04034b50;
    private const int MaxDirectoryBytes = 16 << 20;

    /// <summary>A read-only seekable view of entry <paramref name="name"/>, or null when it is compressed (or not found).</summary>
    /// <exception cref="InvalidDataException">The zip's directory or the entry's header is malformed.</exception>
    public static Stream? OpenInPlace(Stream zip, string name)
    {
        var (offset, length) = Locate(zip, name) ?? (-1L, -1L);
        return offset < 0 ? null : new StreamWindow(zip, offset, length);
    }

    private static (long Offset, long Length)? Locate(Stream zip, string name)
    {
        var (directoryOffset, directorySize) = FindDirectory(zip);
        var directory = ReadAt(zip, directoryOffset, checked((int)directorySize));
        var position = 0;
        while (position + 46 <= directory.Length)
        {
            var header = directory.AsSpan(position);
            if (BinaryPrimitives.ReadUInt32LittleEndian(header) != DirectoryEntry)
                throw Malformed("a central directory entry has a wrong signature");
            var method = BinaryPrimitives.ReadUInt16LittleEndian(header[10..]);
            long compressed = BinaryPrimitives.ReadUInt32LittleEndian(header[20..]);
            long uncompressed = BinaryPrimitives.ReadUInt32LittleEndian(header[24..]);
            var nameLength = BinaryPrimitives.ReadUInt16LittleEndian(header[28..]);
            var extraLength = BinaryPrimitives.ReadUInt16LittleEndian(header[30..]);
            var commentLength = BinaryPrimitives.ReadUInt16LittleEndian(header[32..]);
            long localOffset = BinaryPrimitives.ReadUInt32LittleEndian(header[42..]);
            var next = position + 46 + nameLength + extraLength + commentLength;
            if (next > directory.Length)
                throw Malformed("the central directory is truncated");
            var entryName = Encoding.UTF8.GetString(header.Slice(46, nameLength));
            if (entryName == name)
            {
                ReadZip64Sizes(header.Slice(46 + nameLength, extraLength), ref uncompressed, ref compressed, ref localOffset);
                if (method != 0 || compressed != uncompressed)
                    return null;
                var local = ReadAt(zip, localOffset, 30);
                if (BinaryPrimitives.ReadUInt32LittleEndian(local) != LocalHeader)
                    throw Malformed($"the local header of {name} has a wrong signature");
                var data = localOffset + 30 + BinaryPrimitives.ReadUInt16LittleEndian(local.AsSpan(26))
                    + BinaryPrimitives.ReadUInt16LittleEndian(local.AsSpan(28));
                if (data + compressed > zip.Length)
                    throw Malformed($"{name} runs past the end of the file");
                return (data, compressed);
            }
            position = next;
        }
        return null;
    }

    private static (long Offset, long Size) FindDirectory(Stream zip)
    {
        var tailLength = (int)Math.Min(zip.Length, 22 + ushort.MaxValue);
        var tailStart = zip.Length - tailLength;
        var tail = ReadAt(zip, tailStart, tailLength);
        for (var i = tail.Length - 22; i >= 0; i--)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(i)) != EndOfDirectory)
                continue;
            long size = BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(i + 12));
            long offset = BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(i + 16));
            if ((offset == uint.MaxValue || size == uint.MaxValue) && i >= 20
                && BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(i - 20)) == Zip64EndLocator)
            {
                var end64 = ReadAt(zip, (long)BinaryPrimitives.ReadUInt64LittleEndian(tail.AsSpan(i - 12)), 56);
                if (BinaryPrimitives.ReadUInt32LittleEndian(end64) != Zip64End)
                    throw Malformed("the zip64 end record has a wrong signature");
                size = (long)BinaryPrimitives.ReadUInt64LittleEndian(end64.AsSpan(40));
                offset = (long)BinaryPrimitives.ReadUInt64LittleEndian(end64.AsSpan(48));
            }
            if (size > MaxDirectoryBytes || offset < 0 || offset + size > zip.Length)
                throw Malformed("the central directory lies outside the file or is too large");
            return (offset, size);
        }
        throw Malformed("no end of central directory record");
    }

    // Sizes and offsets of 0xFFFFFFFF are in the zip64 extra field (id 1), in this order, each present only if needed.
    private static void ReadZip64Sizes(ReadOnlySpan<byte> extra, ref long uncompressed, ref long compressed, ref long localOffset)
    {
        while (extra.Length >= 4)
        {
            var id = BinaryPrimitives.ReadUInt16LittleEndian(extra);
            var length = BinaryPrimitives.ReadUInt16LittleEndian(extra[2..]);
            if (4 + length > extra.Length)
                throw Malformed("an extra field is truncated");
            var field = extra.Slice(4, length);
            if (id == 1)
            {
                var at = 0;
                uncompressed = Zip64Value(field, uncompressed, ref at);
                compressed = Zip64Value(field, compressed, ref at);
                localOffset = Zip64Value(field, localOffset, ref at);
            }
            extra = extra[(4 + length)..];
        }
    }

    private static long Zip64Value(ReadOnlySpan<byte> field, long value, ref int at)
    {
        if (value != uint.MaxValue)
            return value;
        if (at + 8 > field.Length)
            throw Malformed("the zip64 extra field is truncated");
        value = (long)BinaryPrimitives.ReadUInt64LittleEndian(field[at..]);
        at += 8;
        return value;
    }

    private static byte[] ReadAt(Stream zip, long offset, int count)
    {
        if (offset < 0 || offset + count > zip.Length)
            throw Malformed("a record lies outside the file");
        var buffer = new byte[count];
        zip.Position = offset;
        zip.ReadExactly(buffer);
        return buffer;
    }

    private static InvalidDataException Malformed(string what) => new($"The checkpoint's zip is malformed: {what}.");

    /// <summary>A read-only, seekable window [start, start + length) of a seekable stream, which it does not own.</summary>
    private sealed class StreamWindow(Stream inner, long start, long length) : Stream
    {
        private long _position;

        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => length;

        public override long Position
        {
            get => _position;
            set => _position = value is >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value));
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var available = length - _position;
            if (available <= 0)
                return 0;
            if (buffer.Length > available)
                buffer = buffer[..(int)available];
            inner.Position = start + _position;
            var read = inner.Read(buffer);
            _position += read;
            return read;
        }

        public override long Seek(long offset, SeekOrigin origin) => Position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => length + offset,
        };

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
