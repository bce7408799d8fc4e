using Microsoft.Win32.SafeHandles;

namespace Ifcb.Data.Datasets.Shards;

/// <summary>
/// A shard made local by <see cref="ShardCache.AcquireAsync"/> and pinned against eviction until disposed. Reads go through
/// an open handle, so they stay valid even if another process deletes the file meanwhile.
/// </summary>
public sealed class ShardLease : IDisposable
{
    private readonly ShardCache _cache;
    private readonly CachedShard _shard;
    private int _disposed;

    internal ShardLease(ShardCache cache, CachedShard shard, SafeFileHandle handle, bool downloaded)
    {
        _cache = cache;
        _shard = shard;
        Handle = handle;
        Downloaded = downloaded;
    }

    public string Sha256 => _shard.Sha256;
    public string Path => _shard.Path;
    /// <summary>True when this acquire (or the download it joined) fetched the shard; false when it was already cached.</summary>
    public bool Downloaded { get; }
    public long Length => _shard.Length;
    /// <summary>An open read handle on the shard file.</summary>
    public SafeFileHandle Handle { get; }

    /// <summary>
    /// Reads the bytes [<paramref name="offset"/>, offset + destination.Length) of the shard. Thread-safe: there is no
    /// shared file position.
    /// </summary>
    public void Read(long offset, Span<byte> destination)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (offset > Length - destination.Length)
            throw new ArgumentOutOfRangeException(nameof(offset),
                $"Bytes [{offset}, {offset + destination.Length}) lie beyond the end of shard {Sha256} ({Length} bytes).");
        while (!destination.IsEmpty)
        {
            var read = RandomAccess.Read(Handle, destination, offset);
            if (read == 0)
                throw new EndOfStreamException($"Shard {Sha256} ended at byte {offset}, before its length of {Length} bytes.");
            destination = destination[read..];
            offset += read;
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        Handle.Dispose();
        _cache.Release(_shard);
    }
}
