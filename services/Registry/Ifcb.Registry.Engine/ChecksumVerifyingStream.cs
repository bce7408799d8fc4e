using System.Security.Cryptography;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine;

/// <summary>
/// Passes bytes through while counting and hashing them, and fails the read that would end the stream if the size
/// or sha256 differ from what was declared. Used for uploads, where the failing read stops the Azure SDK before it
/// commits the blob (so bad bytes are never stored), and for downloads, where it stops the reader from trusting
/// corrupted bytes. Deliberately not seekable: a seekable source would let the SDK read by length and skip the
/// final, verifying read.
/// </summary>
internal sealed class ChecksumVerifyingStream(Stream source, long expectedSize, string expectedSha256, bool leaveOpen)
    : Stream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _bytesSeen;
    private bool _verified;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => _bytesSeen;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var read = source.Read(buffer);
        Account(buffer[..read]);
        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await source.ReadAsync(buffer, cancellationToken);
        Account(buffer.Span[..read]);
        return read;
    }

    private void Account(ReadOnlySpan<byte> chunk)
    {
        if (chunk.IsEmpty)
        {
            VerifyAtEnd();
            return;
        }

        _bytesSeen += chunk.Length;
        if (_bytesSeen > expectedSize)
        {
            // Stop as soon as the stream overruns: never buffer or upload more than was declared.
            throw new IfcbException(ErrorKind.DataLoss,
                $"Checkpoint stream is longer than the declared size of {expectedSize} bytes; send the declared size of the file.");
        }

        _hash.AppendData(chunk);
    }

    private void VerifyAtEnd()
    {
        if (_verified)
            return;

        if (_bytesSeen != expectedSize)
        {
            throw new IfcbException(ErrorKind.DataLoss,
                $"Checkpoint stream ended after {_bytesSeen} bytes but {expectedSize} were declared; " +
                "the upload was truncated or the size is wrong.");
        }

        var actual = Convert.ToHexStringLower(_hash.GetHashAndReset());
        if (!string.Equals(actual, expectedSha256, StringComparison.Ordinal))
        {
            throw new IfcbException(ErrorKind.DataLoss,
                $"Checkpoint sha256 is {actual} but {expectedSha256} was declared; " +
                "the bytes were corrupted or the declared hash is wrong.");
        }

        _verified = true;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
            if (!leaveOpen)
                source.Dispose();
        }

        base.Dispose(disposing);
    }
}
