using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;

namespace Ifcb.Data.Datasets.Shards;

/// <summary>A snapshot of what a <see cref="ShardCache"/> has done since it was created and what it holds now.</summary>
public sealed record ShardCacheCounters(long Downloads, long BytesDownloaded, long Hits, long Evictions, long BytesCached, int Shards);

/// <summary>
/// One on-disk cache of dataset shards per worker, keyed by the SHA-256 of each shard and shared by every job on the worker:
/// a sweep's trials, a resumed job and the next training on the same dataset read the same files. Least-recently-used
/// shards that no lease pins are evicted once the cache outgrows its size limit. Within a process concurrent acquires of
/// one shard share a single download; across processes a shard only appears under its final name by an atomic rename of
/// a verified temporary file, so no reader ever sees a partial shard.
/// </summary>
public sealed class ShardCache : IDisposable
{
    private const string ShardExtension = ".shard";
    private const string PartExtension = ".part";
    private const int MaxAttempts = 3;

    /// <summary>Another process may still be writing a temporary file younger than this; older ones are leftovers.</summary>
    private static readonly TimeSpan StalePartAge = TimeSpan.FromMinutes(1);

    private readonly string _root;
    private readonly long _maxBytes;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, CachedShard> _shards = new(StringComparer.Ordinal);
    private readonly LinkedList<CachedShard> _recency = new(); // first = least recently used
    private readonly Dictionary<string, Flight> _flights = new(StringComparer.Ordinal);
    private long _downloads;
    private long _bytesDownloaded;
    private long _hits;
    private long _evictions;
    private long _bytesCached;
    private bool _overLimitLogged;
    private bool _disposed;

    /// <param name="root">The cache directory, created if missing.</param>
    /// <param name="maxBytes">The size limit in bytes; shards pinned by leases may push the cache past it.</param>
    public ShardCache(string root, long maxBytes, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBytes);
        _root = System.IO.Path.GetFullPath(root);
        _maxBytes = maxBytes;
        _logger = logger ?? NullLogger.Instance;
        Directory.CreateDirectory(_root);
        DeleteStaleParts();
        AdoptExistingShards();
    }

    public ShardCacheCounters Counters
    {
        get
        {
            lock (_lock)
                return new ShardCacheCounters(_downloads, _bytesDownloaded, _hits, _evictions, _bytesCached, _shards.Count);
        }
    }

    /// <summary>
    /// Makes the shard with this SHA-256 and size local and pins it until the lease is disposed. On a miss
    /// <paramref name="download"/> writes the shard's bytes into the stream it is given; the bytes are hashed as they are
    /// written and the file only enters the cache when its SHA-256 and length match (otherwise
    /// <see cref="InvalidDataException"/>). Concurrent calls for one shard share a single download: if it fails every one
    /// of them sees the exception and a later call tries again. Cancelling one call stops only its own wait; the shared
    /// download is cancelled once no call waits for it.
    /// </summary>
    public async Task<ShardLease> AcquireAsync(string sha256, long size, Func<Stream, CancellationToken, Task> download,
        CancellationToken cancellationToken)
    {
        ValidateSha256(sha256);
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        ArgumentNullException.ThrowIfNull(download);
        cancellationToken.ThrowIfCancellationRequested();

        var downloaded = false;
        for (var attempt = 1; ; attempt++)
        {
            var (shard, flight) = PinOrJoin(sha256, size, download);
            if (flight is not null)
            {
                (shard, var fetched) = await WaitForFlightAsync(flight, cancellationToken).ConfigureAwait(false);
                downloaded |= fetched;
            }
            var lease = TryOpen(shard!, downloaded);
            if (lease is not null)
            {
                if (flight is null || !lease.Downloaded)
                    RecordHit(lease.Handle);
                return lease;
            }
            if (attempt == MaxAttempts)
                throw new IOException($"Shard {sha256} vanished from {_root} {MaxAttempts} times right after it was made local: " +
                    "another process on this worker evicts it at once; give that process's shard cache a larger size limit.");
        }
    }

    public void Dispose()
    {
        Flight[] flights;
        lock (_lock)
        {
            if (_disposed)
                return;
            _disposed = true;
            flights = [.. _flights.Values];
            _flights.Clear();
        }
        // Outside the lock: cancellation runs the downloads' callbacks, and their continuations may run inline.
        foreach (var flight in flights)
            flight.Cancel();
    }

    internal void Release(CachedShard shard)
    {
        lock (_lock)
        {
            shard.Pins--;
            if (shard.Pins == 0 && !_disposed)
                EvictOverLimit();
        }
    }

    private string ShardPath(string sha256) => System.IO.Path.Combine(_root, sha256 + ShardExtension);

    /// <summary>Pins the cached shard when there is one, otherwise joins (or starts) the download of it.</summary>
    private (CachedShard? Shard, Flight? Flight) PinOrJoin(string sha256, long size, Func<Stream, CancellationToken, Task> download)
    {
        Flight? started = null;
        try
        {
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_shards.TryGetValue(sha256, out var shard))
                {
                    if (shard.Length == size)
                    {
                        shard.Pins++;
                        _recency.Remove(shard.Node);
                        _recency.AddLast(shard.Node);
                        return (shard, null);
                    }
                    Forget(shard);
                }
                if (!_flights.TryGetValue(sha256, out var flight))
                {
                    flight = started = new Flight(sha256, size);
                    _flights.Add(sha256, flight);
                }
                flight.Waiters++;
                return (null, flight);
            }
        }
        finally
        {
            // Started outside the lock: the download delegate may run synchronously up to its first await.
            if (started is not null)
                _ = RunFlightAsync(started, download);
        }
    }

    private async Task<(CachedShard Shard, bool Downloaded)> WaitForFlightAsync(Flight flight, CancellationToken cancellationToken)
    {
        try
        {
            return await flight.Completion.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            var abandoned = false;
            lock (_lock)
            {
                if (flight.Finished)
                {
                    // The flight finished as this wait was cancelled and already pinned the shard for this caller.
                    if (flight.Shard is { } shard)
                        shard.Pins--;
                }
                else if (--flight.Waiters == 0)
                {
                    // Nobody waits any more: a later acquire starts a fresh download rather than join this one.
                    abandoned = true;
                    if (_flights.TryGetValue(flight.Sha256, out var current) && current == flight)
                        _flights.Remove(flight.Sha256);
                }
            }
            if (abandoned)
                flight.Cancel();
            throw;
        }
    }

    private async Task RunFlightAsync(Flight flight, Func<Stream, CancellationToken, Task> download)
    {
        await Task.Yield();
        var path = ShardPath(flight.Sha256);
        try
        {
            var downloaded = !IsInPlace(path, flight.Size);
            if (downloaded)
                await DownloadAsync(flight, path, download).ConfigureAwait(false);
            CachedShard shard;
            lock (_lock)
            {
                EndFlight(flight);
                if (downloaded)
                {
                    _downloads++;
                    _bytesDownloaded += flight.Size;
                }
                shard = flight.Shard = Admit(flight.Sha256, flight.Size);
                shard.Verified |= downloaded;
                shard.Pins += flight.Waiters;
                EvictOverLimit();
            }
            if (downloaded)
            {
                ShardCacheMetrics.Downloads.Add(1);
                ShardCacheMetrics.BytesDownloaded.Add(flight.Size);
                _logger.LogDebug("Downloaded shard {Sha256} ({Bytes} bytes) into {Root}.", flight.Sha256, flight.Size, _root);
            }
            flight.Completion.SetResult((shard, downloaded));
        }
        catch (Exception e)
        {
            lock (_lock)
                EndFlight(flight);
            flight.Completion.SetException(e);
        }
        finally
        {
            flight.Cancellation.Dispose();
        }
    }

    /// <summary>A shard another process already made local counts as cached: the rename guarantees it is whole.</summary>
    private static bool IsInPlace(string path, long size)
    {
        var info = new FileInfo(path);
        return info.Exists && info.Length == size;
    }

    private async Task DownloadAsync(Flight flight, string path, Func<Stream, CancellationToken, Task> download)
    {
        var part = System.IO.Path.Combine(_root, $"{flight.Sha256}.{Guid.NewGuid():N}{PartExtension}");
        try
        {
            string actual;
            long written;
            var file = new FileStream(part, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            await using (file.ConfigureAwait(false))
            {
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                // Not disposed here: it owns nothing, so a download that disposes the stream it was given does no harm.
                var hashing = new HashingWriteStream(file, hash, flight.Sha256, flight.Size);
                await download(hashing, flight.Cancellation.Token).ConfigureAwait(false);
                // Not forced to disk: a shard this process wrote is read back through the page cache, and one a crash of
                // the machine may have left half-written under its final name is hashed again before its first use by a
                // new process (TryOpen). Forcing ~64 MB to disk per shard would double a cold job's wait here.
                await file.FlushAsync(flight.Cancellation.Token).ConfigureAwait(false);
                actual = hashing.HashHex();
                written = hashing.Written;
            }
            if (written != flight.Size || actual != flight.Sha256)
                throw new InvalidDataException($"Shard {flight.Sha256}: the download gave {written} bytes with SHA-256 {actual}, " +
                    $"expected {flight.Size} bytes with SHA-256 {flight.Sha256}; the shard in blob storage is damaged or its " +
                    "manifest is wrong.");
            File.Move(part, path, overwrite: true);
        }
        catch
        {
            TryDelete(part);
            throw;
        }
    }

    private ShardLease? TryOpen(CachedShard shard, bool downloaded)
    {
        try
        {
            var handle = File.OpenHandle(shard.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            if (RandomAccess.GetLength(handle) == shard.Length && (shard.Verified || Verify(shard, handle)))
                return new ShardLease(this, shard, handle, downloaded);
            handle.Dispose();
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
        }
        // Another process evicted or replaced the file: forget it so the next attempt downloads it again.
        lock (_lock)
        {
            shard.Pins--;
            Forget(shard);
        }
        return null;
    }

    /// <summary>
    /// Hashes a shard this process did not download (adopted at start-up, or put in place by another process) before its
    /// first use here; a damaged one is deleted, so the caller downloads it again.
    /// </summary>
    private bool Verify(CachedShard shard, SafeFileHandle handle)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        long offset = 0;
        int read;
        while ((read = RandomAccess.Read(handle, buffer, offset)) > 0)
        {
            hash.AppendData(buffer, 0, read);
            offset += read;
        }
        if (Convert.ToHexStringLower(hash.GetHashAndReset()) == shard.Sha256)
        {
            lock (_lock)
                shard.Verified = true;
            return true;
        }
        _logger.LogWarning("Cached shard {Sha256} in {Root} does not match its hash (left by a crash?); downloading it again.",
            shard.Sha256, _root);
        TryDelete(shard.Path);
        return false;
    }

    private void RecordHit(SafeFileHandle handle)
    {
        lock (_lock)
            _hits++;
        ShardCacheMetrics.Hits.Add(1);
        try
        {
            // Keeps the recency order across restarts: they adopt shards least recently written first.
            File.SetLastWriteTimeUtc(handle, DateTime.UtcNow);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogDebug("Could not touch a cached shard ({Reason}); its recency is lost at the next restart.", e.Message);
        }
    }

    /// <summary>Caller holds the lock.</summary>
    private void EndFlight(Flight flight)
    {
        flight.Finished = true;
        if (_flights.TryGetValue(flight.Sha256, out var current) && current == flight)
            _flights.Remove(flight.Sha256);
    }

    /// <summary>Caller holds the lock. Returns the cached shard with this hash, most recently used.</summary>
    private CachedShard Admit(string sha256, long length)
    {
        if (_shards.TryGetValue(sha256, out var shard))
        {
            if (shard.Length == length)
            {
                _recency.Remove(shard.Node);
                _recency.AddLast(shard.Node);
                return shard;
            }
            Forget(shard);
        }
        shard = new CachedShard(sha256, ShardPath(sha256), length);
        _shards.Add(sha256, shard);
        _recency.AddLast(shard.Node);
        _bytesCached += length;
        return shard;
    }

    /// <summary>Caller holds the lock. Drops the shard from the books; leases on it keep their open handles.</summary>
    private void Forget(CachedShard shard)
    {
        if (!_shards.TryGetValue(shard.Sha256, out var current) || current != shard)
            return;
        _shards.Remove(shard.Sha256);
        _recency.Remove(shard.Node);
        _bytesCached -= shard.Length;
    }

    /// <summary>Caller holds the lock, so no download of the same shard can land between the check and the delete.</summary>
    private void EvictOverLimit()
    {
        var node = _recency.First;
        while (_bytesCached > _maxBytes && node is not null)
        {
            var next = node.Next;
            var shard = node.Value;
            if (shard.Pins == 0)
            {
                Forget(shard);
                TryDelete(shard.Path);
                _evictions++;
                ShardCacheMetrics.Evictions.Add(1);
                _logger.LogDebug("Evicted shard {Sha256} ({Bytes} bytes) from {Root}.", shard.Sha256, shard.Length, _root);
            }
            node = next;
        }
        if (_bytesCached <= _maxBytes)
            _overLimitLogged = false;
        else if (!_overLimitLogged)
        {
            _overLimitLogged = true;
            _logger.LogWarning("The shard cache in {Root} holds {Bytes} bytes, over its limit of {MaxBytes}, because open leases pin " +
                "every shard in it; it shrinks as they are released. Give it a larger limit if this persists.",
                _root, _bytesCached, _maxBytes);
        }
    }

    private void DeleteStaleParts()
    {
        var staleBefore = DateTime.UtcNow - StalePartAge;
        foreach (var part in new DirectoryInfo(_root).EnumerateFiles("*" + PartExtension))
        {
            if (part.LastWriteTimeUtc < staleBefore)
                TryDelete(part.FullName);
        }
    }

    private void AdoptExistingShards()
    {
        var found = new DirectoryInfo(_root).EnumerateFiles("*" + ShardExtension)
            .Select(file => (File: file, Sha256: System.IO.Path.GetFileNameWithoutExtension(file.Name)))
            .Where(f => IsSha256(f.Sha256))
            .OrderBy(f => f.File.LastWriteTimeUtc);
        lock (_lock)
        {
            foreach (var (file, sha256) in found)
            {
                // A shard is never empty (a tar holds at least its end blocks): an empty file is debris.
                if (file.Length == 0)
                {
                    TryDelete(file.FullName);
                    continue;
                }
                var shard = new CachedShard(sha256, file.FullName, file.Length);
                _shards.Add(sha256, shard);
                _recency.AddLast(shard.Node);
                _bytesCached += file.Length;
            }
            if (_shards.Count > 0)
                _logger.LogInformation("Adopted {Count} cached shards ({Bytes} bytes) in {Root}.", _shards.Count, _bytesCached, _root);
            EvictOverLimit();
        }
    }

    private void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning("Could not delete {Path} from the shard cache: {Reason}", path, e.Message);
        }
    }

    private static void ValidateSha256(string sha256)
    {
        ArgumentNullException.ThrowIfNull(sha256);
        if (!IsSha256(sha256))
            throw new ArgumentException($"'{sha256}' is not a SHA-256: a shard is named by 64 lowercase hex digits.", nameof(sha256));
    }

    private static bool IsSha256(string text) => text.Length == 64 && text.All(char.IsAsciiHexDigitLower);

    /// <summary>One download that every concurrent acquire of the same shard waits for.</summary>
    private sealed class Flight(string sha256, long size)
    {
        public string Sha256 { get; } = sha256;
        public long Size { get; } = size;
        public TaskCompletionSource<(CachedShard Shard, bool Downloaded)> Completion { get; } =
            new(TaskCreationOptions.RunContinuationsAsynchronously);
        public CancellationTokenSource Cancellation { get; } = new();
        /// <summary>Acquires still waiting; guarded by the cache's lock.</summary>
        public int Waiters { get; set; }
        /// <summary>Set under the cache's lock when the outcome is decided; the waiters still counted then hold a pin.</summary>
        public bool Finished { get; set; }
        /// <summary>The shard the flight made local, set with <see cref="Finished"/>; null when it failed.</summary>
        public CachedShard? Shard { get; set; }

        public void Cancel()
        {
            try
            {
                Cancellation.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The download ended meanwhile; there is nothing left to cancel.
            }
        }
    }

    /// <summary>Hashes and counts what a download writes on its way to the temporary file, refusing more than expected.</summary>
    private sealed class HashingWriteStream(Stream inner, IncrementalHash hash, string sha256, long expected) : Stream
    {
        public long Written { get; private set; }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => Written;
        public override long Position { get => Written; set => throw new NotSupportedException(); }

        public string HashHex() => Convert.ToHexStringLower(hash.GetHashAndReset());

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            Account(buffer);
            inner.Write(buffer);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Account(buffer.Span);
            return inner.WriteAsync(buffer, cancellationToken);
        }

        public override void Flush() => inner.Flush();
        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        private void Account(ReadOnlySpan<byte> buffer)
        {
            if (Written + buffer.Length > expected)
                throw new InvalidDataException($"Shard {sha256}: the download wrote more than the expected {expected} bytes; " +
                    "the shard in blob storage is damaged or its manifest is wrong.");
            hash.AppendData(buffer);
            Written += buffer.Length;
        }
    }
}

/// <summary>The cache's books on one shard file; guarded by the cache's lock.</summary>
internal sealed class CachedShard
{
    public CachedShard(string sha256, string path, long length)
    {
        Sha256 = sha256;
        Path = path;
        Length = length;
        Node = new LinkedListNode<CachedShard>(this);
    }

    public string Sha256 { get; }
    public string Path { get; }
    public long Length { get; }
    public LinkedListNode<CachedShard> Node { get; }
    /// <summary>Leases (and flight waiters about to get one) that keep the shard from eviction.</summary>
    public int Pins { get; set; }

    /// <summary>This process downloaded it or hashed it since it started: its bytes are the shard's.</summary>
    public bool Verified { get; set; }
}
