using System.Formats.Tar;
using System.Security.Cryptography;

namespace Ifcb.Data.Datasets.Shards;

/// <summary>
/// Writes one shard: a tar file (GNU format, so any <c>tar</c> lists and extracts it) of images named
/// <c>class/file</c>, written sequentially, with fixed times, owner and mode so that the same images in the same order
/// always give the same bytes, hence the same SHA-256: a re-upload of unchanged images finds the shard already stored.
/// Members must be added in canonical order (ordinal by class, then file). <see cref="Complete"/> returns the shard's
/// hash and its <see cref="ShardIndex"/>.
/// </summary>
public sealed class ShardWriter : IDisposable
{
    private const int TarBlock = 512;
    private const UnixFileMode MemberMode =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    private readonly HashingStream _output;
    private readonly TarWriter _tar;
    private readonly List<(string Class, string File, long Offset, long Size, string Sha256)> _members = [];
    private bool _completed;

    /// <param name="output">Where the shard's bytes go (a temporary file); left open.</param>
    public ShardWriter(Stream output)
    {
        ArgumentNullException.ThrowIfNull(output);
        _output = new HashingStream(output);
        _tar = new TarWriter(_output, TarEntryFormat.Gnu, leaveOpen: true);
    }

    public int Count => _members.Count;

    /// <summary>Bytes written so far (headers, contents and padding).</summary>
    public long Length => _output.Position;

    /// <summary>Appends one image; returns the SHA-256 of <paramref name="content"/>.</summary>
    /// <exception cref="ArgumentException">Out of canonical order, or the same class/file twice.</exception>
    public string Add(string className, string fileName, byte[] content)
    {
        ArgumentNullException.ThrowIfNull(content);
        ObjectDisposedException.ThrowIf(_completed, this);
        if (_members.Count > 0)
        {
            var last = _members[^1];
            var order = DatasetFile.CompareKeys(last.Class, last.File, className, fileName);
            if (order >= 0)
                throw new ArgumentException(order == 0
                    ? $"{className}/{fileName} is already in this shard."
                    : $"{className}/{fileName} comes before {last.Class}/{last.File}; add members in canonical order.");
        }
        var sha = Convert.ToHexStringLower(SHA256.HashData(content));
        using var data = new MemoryStream(content, writable: false);
        // Access and change times stay unset: GNU tar leaves those header fields empty, and readers that know only the
        // POSIX layout (Python's tarfile among them) would take them for a path prefix.
        var entry = new GnuTarEntry(TarEntryType.RegularFile, $"{className}/{fileName}")
        {
            DataStream = data, ModificationTime = DateTimeOffset.UnixEpoch, Mode = MemberMode,
            Uid = 0, Gid = 0, UserName = "", GroupName = "",
        };
        _tar.WriteEntry(entry);
        // WriteEntry writes the header block(s), the content and the padding to the next 512-byte block, in that order.
        var padded = (content.LongLength + TarBlock - 1) / TarBlock * TarBlock;
        _members.Add((className, fileName, _output.Position - padded, content.LongLength, sha));
        return sha;
    }

    /// <summary>Ends the tar (its two zero blocks) and returns the shard's SHA-256 and index.</summary>
    public ShardIndex Complete()
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        _completed = true;
        _tar.Dispose();
        _output.Flush();
        var shard = _output.Hash();
        return new ShardIndex
        {
            Shard = shard, Bytes = _output.Position,
            Members = [.. _members.Select(m => new ShardMember(m.Class, m.File, m.Offset, m.Size, m.Sha256))],
        };
    }

    public void Dispose()
    {
        if (!_completed)
            _tar.Dispose();
        _completed = true;
        _output.Dispose();
    }

    /// <summary>A write-only pass-through that counts and hashes what is written.</summary>
    private sealed class HashingStream(Stream inner) : Stream
    {
        private readonly IncrementalHash _sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private long _position;

        public string Hash() => Convert.ToHexStringLower(_sha.GetCurrentHash());

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _position;
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            _sha.AppendData(buffer);
            _position += buffer.Length;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                _sha.Dispose();
            base.Dispose(disposing);
        }
    }
}
