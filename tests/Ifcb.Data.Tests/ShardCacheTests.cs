using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using Ifcb.Data.Datasets.Shards;

namespace Ifcb.Data.Tests;

public sealed class ShardCacheTests : IDisposable
{
    private const int ShardSize = 10_000;
    private readonly string _root = Path.Combine(Path.GetTempPath(), "ifcb-shard-cache-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task A_miss_downloads_and_the_next_acquire_is_a_hit()
    {
        var shard = new Shard(1);
        using var cache = new ShardCache(_root, 10 * ShardSize);

        using (var first = await cache.AcquireAsync(shard.Sha256, shard.Size, shard.Download, CancellationToken.None))
        {
            Assert.True(first.Downloaded);
            Assert.Equal(Path.Combine(_root, shard.Sha256 + ".shard"), first.Path);
            Assert.Equal(shard.Bytes, File.ReadAllBytes(first.Path));
        }
        using var second = await cache.AcquireAsync(shard.Sha256, shard.Size, shard.Download, CancellationToken.None);

        Assert.False(second.Downloaded);
        Assert.Equal(1, shard.Calls);
        Assert.Equal(shard.Size, second.Length);
        Assert.Equal(shard.Bytes[100..164], ReadRange(second, 100, 64));
        Assert.Equal(new ShardCacheCounters(Downloads: 1, BytesDownloaded: ShardSize, Hits: 1, Evictions: 0,
            BytesCached: ShardSize, Shards: 1), cache.Counters);
    }

    [Fact]
    public async Task Concurrent_acquires_of_one_shard_share_a_single_download()
    {
        var shard = new Shard(2);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var calls = 0;
        using var cache = new ShardCache(_root, 10 * ShardSize);

        // Each call joins the flight before it returns its task; the download waits on the gate meanwhile.
        var acquires = Enumerable.Range(0, 8).Select(_ => cache.AcquireAsync(shard.Sha256, shard.Size,
            async (stream, token) =>
            {
                Interlocked.Increment(ref calls);
                started.TrySetResult();
                await gate.Task.WaitAsync(token);
                await stream.WriteAsync(shard.Bytes, token);
            }, CancellationToken.None)).ToArray();
        await started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(acquires, acquire => Assert.False(acquire.IsCompleted));
        gate.SetResult();
        var leases = await Task.WhenAll(acquires).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(1, calls);
        Assert.All(leases, lease => Assert.True(lease.Downloaded));
        Assert.All(leases, lease => Assert.Equal(shard.Bytes[..32], ReadRange(lease, 0, 32)));
        Assert.Equal(new ShardCacheCounters(Downloads: 1, BytesDownloaded: ShardSize, Hits: 0, Evictions: 0,
            BytesCached: ShardSize, Shards: 1), cache.Counters);
        foreach (var lease in leases)
            lease.Dispose();
    }

    [Fact]
    public async Task Bytes_that_do_not_match_the_hash_are_refused_and_leave_nothing_behind()
    {
        var shard = new Shard(3);
        var wrong = new Shard(4);
        using var cache = new ShardCache(_root, 10 * ShardSize);

        var error = await Assert.ThrowsAsync<InvalidDataException>(() =>
            cache.AcquireAsync(shard.Sha256, shard.Size, wrong.Download, CancellationToken.None));

        Assert.Contains(shard.Sha256, error.Message);
        Assert.Contains(wrong.Sha256, error.Message);
        Assert.Empty(Directory.GetFiles(_root));
        Assert.Equal(0, cache.Counters.Shards);
        using var lease = await cache.AcquireAsync(shard.Sha256, shard.Size, shard.Download, CancellationToken.None);
        Assert.True(lease.Downloaded);
        Assert.Equal(1, shard.Calls);
        Assert.Equal(1, cache.Counters.Downloads);
    }

    [Fact]
    public async Task A_download_that_writes_too_many_bytes_is_stopped()
    {
        var shard = new Shard(5);
        using var cache = new ShardCache(_root, 10 * ShardSize);

        var error = await Assert.ThrowsAsync<InvalidDataException>(() => cache.AcquireAsync(shard.Sha256, shard.Size - 1,
            shard.Download, CancellationToken.None));

        Assert.Contains(shard.Sha256, error.Message);
        Assert.Empty(Directory.GetFiles(_root));
    }

    [Fact]
    public async Task A_failed_download_fails_every_waiter_and_a_later_acquire_tries_again()
    {
        var shard = new Shard(6);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var calls = 0;
        using var cache = new ShardCache(_root, 10 * ShardSize);
        Func<Stream, CancellationToken, Task> failing = async (_, token) =>
        {
            Interlocked.Increment(ref calls);
            await gate.Task.WaitAsync(token);
            throw new IOException("blob storage is down");
        };

        var waiters = Enumerable.Range(0, 3)
            .Select(_ => cache.AcquireAsync(shard.Sha256, shard.Size, failing, CancellationToken.None)).ToArray();
        gate.SetResult();

        foreach (var waiter in waiters)
            Assert.Equal("blob storage is down", (await Assert.ThrowsAsync<IOException>(() => waiter)).Message);
        Assert.Equal(1, calls);
        Assert.Empty(Directory.GetFiles(_root));
        using var lease = await cache.AcquireAsync(shard.Sha256, shard.Size, shard.Download, CancellationToken.None);
        Assert.True(lease.Downloaded);
        Assert.Equal(1, cache.Counters.Downloads);
    }

    [Fact]
    public async Task The_least_recently_used_shard_is_evicted_first()
    {
        var (a, b, c) = (new Shard(7), new Shard(8), new Shard(9));
        using var cache = new ShardCache(_root, 2 * ShardSize);

        await AcquireAndRelease(cache, a);
        await AcquireAndRelease(cache, b);
        await AcquireAndRelease(cache, a);
        await AcquireAndRelease(cache, c);

        Assert.True(File.Exists(a.PathIn(_root)));
        Assert.False(File.Exists(b.PathIn(_root)));
        Assert.True(File.Exists(c.PathIn(_root)));
        Assert.Equal(1, cache.Counters.Evictions);
        Assert.Equal(2 * ShardSize, cache.Counters.BytesCached);
        await AcquireAndRelease(cache, b);
        Assert.Equal(2, b.Calls);
        Assert.False(File.Exists(a.PathIn(_root)));
    }

    [Fact]
    public async Task A_pinned_shard_is_never_evicted()
    {
        var (a, b, c) = (new Shard(10), new Shard(11), new Shard(12));
        using var cache = new ShardCache(_root, ShardSize);

        using (var pinned = await cache.AcquireAsync(a.Sha256, a.Size, a.Download, CancellationToken.None))
        {
            using (await cache.AcquireAsync(b.Sha256, b.Size, b.Download, CancellationToken.None))
            {
                // Both are pinned: the cache goes over its limit rather than delete a shard in use.
                Assert.Equal(2, cache.Counters.Shards);
                Assert.True(File.Exists(a.PathIn(_root)));
            }
            Assert.False(File.Exists(b.PathIn(_root)));
            Assert.True(File.Exists(a.PathIn(_root)));
            Assert.Equal(a.Bytes[^16..], ReadRange(pinned, ShardSize - 16, 16));
        }
        Assert.True(File.Exists(a.PathIn(_root)));

        await AcquireAndRelease(cache, c);
        Assert.False(File.Exists(a.PathIn(_root)));
        Assert.Equal(new ShardCacheCounters(Downloads: 3, BytesDownloaded: 3 * ShardSize, Hits: 0, Evictions: 2,
            BytesCached: ShardSize, Shards: 1), cache.Counters);
    }

    [Fact]
    public async Task Cancelling_one_waiter_leaves_the_download_to_the_other()
    {
        var shard = new Shard(13);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var downloadCancelled = false;
        using var cache = new ShardCache(_root, 10 * ShardSize);
        Func<Stream, CancellationToken, Task> download = async (stream, token) =>
        {
            await gate.Task;
            downloadCancelled = token.IsCancellationRequested;
            await stream.WriteAsync(shard.Bytes, token);
        };
        using var cancel = new CancellationTokenSource();

        var cancelled = cache.AcquireAsync(shard.Sha256, shard.Size, download, cancel.Token);
        var patient = cache.AcquireAsync(shard.Sha256, shard.Size, download, CancellationToken.None);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        gate.SetResult();
        using var lease = await patient.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.False(downloadCancelled);
        Assert.True(lease.Downloaded);
        Assert.Equal(shard.Bytes[..8], ReadRange(lease, 0, 8));
        Assert.Equal(1, cache.Counters.Downloads);
    }

    [Fact]
    public async Task Cancelling_the_last_waiter_cancels_the_download()
    {
        var shard = new Shard(14);
        var downloadCancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var cache = new ShardCache(_root, 10 * ShardSize);
        Func<Stream, CancellationToken, Task> hanging = async (_, token) =>
        {
            using var registration = token.Register(() => downloadCancelled.TrySetResult());
            await Task.Delay(Timeout.Infinite, token);
        };
        using var first = new CancellationTokenSource();
        using var second = new CancellationTokenSource();

        var waiters = new[]
        {
            cache.AcquireAsync(shard.Sha256, shard.Size, hanging, first.Token),
            cache.AcquireAsync(shard.Sha256, shard.Size, hanging, second.Token),
        };
        await first.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiters[0]);
        Assert.False(downloadCancelled.Task.IsCompleted);
        await second.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiters[1]);
        await downloadCancelled.Task.WaitAsync(TimeSpan.FromSeconds(30));

        using var lease = await cache.AcquireAsync(shard.Sha256, shard.Size, shard.Download, CancellationToken.None);
        Assert.True(lease.Downloaded);
        Assert.Equal(1, shard.Calls);
    }

    [Fact]
    public async Task A_restarted_cache_adopts_its_shards_in_recency_order_and_removes_stale_temporary_files()
    {
        var (a, b, c) = (new Shard(15), new Shard(16), new Shard(17));
        using (var before = new ShardCache(_root, 2 * ShardSize))
        {
            await AcquireAndRelease(before, a);
            await AcquireAndRelease(before, b);
            await AcquireAndRelease(before, a); // a is now the most recently used
        }
        var stalePart = Path.Combine(_root, a.Sha256 + ".0123.part");
        var freshPart = Path.Combine(_root, b.Sha256 + ".4567.part");
        File.WriteAllBytes(stalePart, [1, 2, 3]);
        File.SetLastWriteTimeUtc(stalePart, DateTime.UtcNow.AddMinutes(-2));
        File.WriteAllBytes(freshPart, [4, 5, 6]);
        File.WriteAllBytes(Path.Combine(_root, c.Sha256 + ".shard"), []);

        using var after = new ShardCache(_root, 2 * ShardSize);

        Assert.False(File.Exists(stalePart));
        Assert.True(File.Exists(freshPart));
        Assert.False(File.Exists(c.PathIn(_root)));
        Assert.Equal(new ShardCacheCounters(Downloads: 0, BytesDownloaded: 0, Hits: 0, Evictions: 0,
            BytesCached: 2 * ShardSize, Shards: 2), after.Counters);
        using (var lease = await after.AcquireAsync(a.Sha256, a.Size, Unreachable, CancellationToken.None))
        {
            Assert.False(lease.Downloaded);
            Assert.Equal(a.Bytes[..16], ReadRange(lease, 0, 16));
        }
        await AcquireAndRelease(after, c);
        Assert.False(File.Exists(b.PathIn(_root)));
        Assert.True(File.Exists(a.PathIn(_root)));
        Assert.Equal(1, after.Counters.Hits);
    }

    [Fact]
    public async Task A_shard_deleted_behind_the_cache_is_downloaded_again_and_open_leases_keep_reading()
    {
        var shard = new Shard(18);
        using var cache = new ShardCache(_root, 10 * ShardSize);

        using (var lease = await cache.AcquireAsync(shard.Sha256, shard.Size, shard.Download, CancellationToken.None))
        {
            File.Delete(lease.Path);
            Assert.Equal(shard.Bytes[^8..], ReadRange(lease, ShardSize - 8, 8));
        }
        using var again = await cache.AcquireAsync(shard.Sha256, shard.Size, shard.Download, CancellationToken.None);

        Assert.True(again.Downloaded);
        Assert.Equal(2, shard.Calls);
        Assert.Equal(shard.Bytes, File.ReadAllBytes(again.Path));
        Assert.Equal(2, cache.Counters.Downloads);
        Assert.Equal(ShardSize, cache.Counters.BytesCached);
    }

    [Fact]
    public async Task A_cached_file_of_the_wrong_length_is_downloaded_again()
    {
        var shard = new Shard(19);
        using var cache = new ShardCache(_root, 10 * ShardSize);
        await AcquireAndRelease(cache, shard);
        File.WriteAllBytes(shard.PathIn(_root), shard.Bytes[..100]);

        using var again = await cache.AcquireAsync(shard.Sha256, shard.Size, shard.Download, CancellationToken.None);

        Assert.True(again.Downloaded);
        Assert.Equal(shard.Bytes, File.ReadAllBytes(again.Path));
    }

    [Fact]
    public async Task A_shard_left_damaged_with_the_right_length_is_hashed_by_a_restarted_cache_and_downloaded_again()
    {
        var (good, damaged) = (new Shard(23), new Shard(24));
        using (var before = new ShardCache(_root, 10 * ShardSize))
        {
            await AcquireAndRelease(before, good);
            await AcquireAndRelease(before, damaged);
        }
        // What a machine crash can leave: the file renamed into place, its bytes never written (the cache does not force
        // them to disk).
        File.WriteAllBytes(damaged.PathIn(_root), new byte[ShardSize]);

        using var after = new ShardCache(_root, 10 * ShardSize);
        using (var kept = await after.AcquireAsync(good.Sha256, good.Size, Unreachable, CancellationToken.None))
            Assert.False(kept.Downloaded);
        using var again = await after.AcquireAsync(damaged.Sha256, damaged.Size, damaged.Download, CancellationToken.None);
        Assert.True(again.Downloaded);
        Assert.Equal(2, damaged.Calls);
        Assert.Equal(damaged.Bytes, File.ReadAllBytes(again.Path));
    }

    [Fact]
    public async Task A_second_cache_on_the_same_root_uses_the_shard_the_first_made_local()
    {
        var shard = new Shard(20);
        using var first = new ShardCache(_root, 10 * ShardSize);
        using var second = new ShardCache(_root, 10 * ShardSize);

        await AcquireAndRelease(first, shard);
        using var lease = await second.AcquireAsync(shard.Sha256, shard.Size, Unreachable, CancellationToken.None);

        Assert.False(lease.Downloaded);
        Assert.Equal(1, second.Counters.Hits);
        Assert.Equal(0, second.Counters.Downloads);
    }

    [Fact]
    public async Task Arguments_are_validated()
    {
        var shard = new Shard(21);
        using var cache = new ShardCache(_root, 10 * ShardSize);

        await Assert.ThrowsAnyAsync<ArgumentException>(() =>
            cache.AcquireAsync(shard.Sha256.ToUpperInvariant(), shard.Size, shard.Download, CancellationToken.None));
        await Assert.ThrowsAnyAsync<ArgumentException>(() =>
            cache.AcquireAsync(shard.Sha256[1..], shard.Size, shard.Download, CancellationToken.None));
        await Assert.ThrowsAnyAsync<ArgumentException>(() =>
            cache.AcquireAsync("../" + shard.Sha256[3..], shard.Size, shard.Download, CancellationToken.None));
        await Assert.ThrowsAnyAsync<ArgumentException>(() =>
            cache.AcquireAsync(shard.Sha256, -1, shard.Download, CancellationToken.None));
        Assert.ThrowsAny<ArgumentException>(() => new ShardCache(_root, 0));
        Assert.Equal(0, shard.Calls);

        using var lease = await cache.AcquireAsync(shard.Sha256, shard.Size, shard.Download, CancellationToken.None);
        Assert.Throws<ArgumentOutOfRangeException>(() => lease.Read(ShardSize - 4, new byte[8]));
        Assert.Throws<ArgumentOutOfRangeException>(() => lease.Read(-1, new byte[1]));
    }

    [Fact]
    public async Task Downloads_and_hits_are_published_on_the_Ifcb_Data_meter()
    {
        var shard = new Shard(22);
        var totals = new Dictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Ifcb.Data" && instrument.Name.StartsWith("ifcb.dataset.shard_cache.", StringComparison.Ordinal))
                l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            lock (totals)
                totals[instrument.Name] = totals.GetValueOrDefault(instrument.Name) + value;
        });
        listener.Start();
        using var cache = new ShardCache(_root, 10 * ShardSize);

        await AcquireAndRelease(cache, shard);
        await AcquireAndRelease(cache, shard);

        lock (totals)
        {
            // Other caches in this process may publish at the same time: at least this one's measurements arrive.
            Assert.True(totals.GetValueOrDefault("ifcb.dataset.shard_cache.downloads") >= 1);
            Assert.True(totals.GetValueOrDefault("ifcb.dataset.shard_cache.bytes_downloaded") >= ShardSize);
            Assert.True(totals.GetValueOrDefault("ifcb.dataset.shard_cache.hits") >= 1);
        }
    }

    [Fact]
    public async Task Many_jobs_acquiring_cancelling_and_releasing_at_once_leak_no_pin_and_read_only_whole_shards()
    {
        var shards = Enumerable.Range(30, 5).Select(seed => new Shard(seed)).ToArray();
        using var cache = new ShardCache(_root, 2 * ShardSize);

        var jobs = Enumerable.Range(0, 200).Select(i => Task.Run(async () =>
        {
            var random = new Random(i);
            var shard = shards[random.Next(shards.Length)];
            using var cancel = new CancellationTokenSource();
            if (random.Next(4) == 0)
                cancel.CancelAfter(random.Next(3));
            try
            {
                using var lease = await cache.AcquireAsync(shard.Sha256, shard.Size, async (stream, token) =>
                {
                    await Task.Delay(random.Next(3), token);
                    await shard.Download(stream, token);
                }, cancel.Token);
                Assert.Equal(shard.Bytes, ReadRange(lease, 0, ShardSize));
                await Task.Delay(random.Next(2));
            }
            catch (OperationCanceledException) when (cancel.IsCancellationRequested)
            {
            }
        })).ToArray();
        await Task.WhenAll(jobs).WaitAsync(TimeSpan.FromMinutes(2));

        // Had any acquire left a pin behind, its shard would survive two fresh shards filling the cache.
        var (x, y) = (new Shard(40), new Shard(41));
        await AcquireAndRelease(cache, x);
        await AcquireAndRelease(cache, y);
        Assert.Equal(new[] { x.PathIn(_root), y.PathIn(_root) }.Order(StringComparer.Ordinal),
            Directory.GetFiles(_root).Order(StringComparer.Ordinal));
        Assert.Equal(2 * ShardSize, cache.Counters.BytesCached);
        Assert.Equal(2, cache.Counters.Shards);
    }

    [Fact]
    public async Task Disposing_the_cache_cancels_its_downloads_and_refuses_new_acquires()
    {
        var shard = new Shard(42);
        var cache = new ShardCache(_root, 10 * ShardSize);
        var waiter = cache.AcquireAsync(shard.Sha256, shard.Size, (_, token) => Task.Delay(Timeout.Infinite, token),
            CancellationToken.None);

        cache.Dispose();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiter).WaitAsync(TimeSpan.FromSeconds(30));
        await Assert.ThrowsAsync<ObjectDisposedException>(() =>
            cache.AcquireAsync(shard.Sha256, shard.Size, shard.Download, CancellationToken.None));
        Assert.Empty(Directory.GetFiles(_root));
    }

    private static Task Unreachable(Stream stream, CancellationToken token) =>
        throw new InvalidOperationException("A cached shard must not be downloaded.");

    private static async Task AcquireAndRelease(ShardCache cache, Shard shard)
    {
        using var lease = await cache.AcquireAsync(shard.Sha256, shard.Size, shard.Download, CancellationToken.None);
    }

    private static byte[] ReadRange(ShardLease lease, long offset, int count)
    {
        var buffer = new byte[count];
        lease.Read(offset, buffer);
        return buffer;
    }

    /// <summary>Random bytes standing in for a packed shard, and a download delegate that counts its calls.</summary>
    private sealed class Shard
    {
        private int _calls;

        public Shard(int seed)
        {
            Bytes = new byte[ShardSize];
            new Random(seed).NextBytes(Bytes);
            Sha256 = Convert.ToHexStringLower(SHA256.HashData(Bytes));
        }

        public byte[] Bytes { get; }
        public string Sha256 { get; }
        public long Size => Bytes.Length;
        public int Calls => Volatile.Read(ref _calls);

        public string PathIn(string root) => Path.Combine(root, Sha256 + ".shard");

        public async Task Download(Stream stream, CancellationToken token)
        {
            Interlocked.Increment(ref _calls);
            // Several writes, so hashing spans buffers as it does for a real download.
            for (var offset = 0; offset < Bytes.Length; offset += 4096)
                await stream.WriteAsync(Bytes.AsMemory(offset, Math.Min(4096, Bytes.Length - offset)), token);
        }
    }
}
