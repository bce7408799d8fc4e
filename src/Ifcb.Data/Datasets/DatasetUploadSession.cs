using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using Azure;
using Ifcb.Data.Datasets.Shards;
using Ifcb.Platform;

namespace Ifcb.Data.Datasets;

/// <summary>
/// One upload of a dataset as a new generation (see <see cref="BlobDatasetStore"/>), fed one image at a time in
/// canonical order (ordinal by class, then file name), as the images arrive: each image goes straight into the shard
/// being written (<see cref="ShardWriter"/>, a temporary file), and each finished shard is stored while the next one
/// fills, unless the dataset stores it already (then it is renewed). <see cref="CommitAsync"/> stores the last shard,
/// writes the generation's manifest and makes it current with <c>If-Match</c>; disposing an uncommitted session
/// abandons it (the shards it stored are collected later). Memory and disk stay bounded by a few shards whatever the
/// number of images: nothing keeps the listing.
/// </summary>
/// <remarks>
/// Shard boundaries depend on the images, not on where the upload starts: a shard ends after an image once it holds at
/// least <see cref="DatasetStoreOptions.ShardBytes"/> and the image's name hashes to one of
/// <see cref="DatasetStoreOptions.ShardBoundaryOneIn"/> buckets (or, whatever the names, once it holds 4× that). So
/// after a change the following shards soon end at the same images as before and have the same bytes: a re-upload
/// sends the shards that hold changed images, and finds the others stored.
/// <para>Every quarter of the grace period the session renews the shards it has stored or reused, so a collector never
/// finds them old however long the upload runs; one that vanished anyway (storage altered behind its back) fails the
/// commit with Unavailable, and running the upload again stores only what is missing.</para>
/// </remarks>
public sealed class DatasetUploadSession : IAsyncDisposable
{
    private const int MaxShardFactor = 4;

    private readonly string _name;
    private readonly DatasetHead _head;
    private readonly DatasetStoreOptions _options;
    private readonly DatasetManifests _manifests;
    private readonly DatasetShards _shards;
    private readonly DatasetGarbageCollector _collector;
    private readonly IProgress<int>? _filesDone;
    private readonly DirectoryInfo _temp;
    private readonly CancellationTokenSource _stop;
    private readonly Channel<PackedShard> _channel = Channel.CreateBounded<PackedShard>(2);
    private readonly List<Task> _storing;
    private readonly Task _renewing;
    private readonly ConcurrentDictionary<int, StoredShard> _stored = new();
    private readonly DatasetFingerprint _fingerprint = new();
    private readonly SortedDictionary<string, int> _classCounts = new(StringComparer.Ordinal);
    private FileStream? _output;
    private ShardWriter? _writer;
    private string? _lastClass;
    private string? _lastFile;
    private long _totalBytes;
    private int _sequence;
    private int _uploaded, _present, _shardsUploaded, _shardsPresent, _done;
    private bool _finished;
    private readonly DateTimeOffset _started = DateTimeOffset.UtcNow;

    private sealed record PackedShard(int Sequence, ShardIndex Index, string TarPath);

    internal DatasetUploadSession(string name, DatasetHead head, DatasetStoreOptions options, DatasetManifests manifests,
        DatasetShards shards, DatasetGarbageCollector collector, int parallelism, IProgress<int>? filesDone,
        CancellationToken cancellationToken)
    {
        _name = name;
        _head = head;
        _options = options;
        _manifests = manifests;
        _shards = shards;
        _collector = collector;
        _filesDone = filesDone;
        _temp = Directory.CreateTempSubdirectory("ifcb-shards-");
        _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _storing = [.. Enumerable.Range(0, Math.Clamp(parallelism / 2, 1, 4)).Select(_ => Task.Run(StoreShardsAsync))];
        _renewing = Task.Run(RenewPeriodicallyAsync);
    }

    public string Name => _name;

    /// <summary>Images added so far.</summary>
    public int Count { get; private set; }

    /// <summary>Adds one image; images must come in canonical order (ordinal by class, then file name).</summary>
    /// <exception cref="ArgumentException">Out of order, or the same class/file twice (the message says which).</exception>
    public async Task AddAsync(string className, string fileName, byte[] content, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        ObjectDisposedException.ThrowIf(_finished, this);
        ThrowIfStoringFailed();
        if (_lastClass is not null)
        {
            var order = DatasetFile.CompareKeys(_lastClass, _lastFile!, className, fileName);
            if (order >= 0)
                throw new ArgumentException(order == 0
                    ? $"{className}/{fileName} was sent twice; send each file once."
                    : $"{className}/{fileName} arrived after {_lastClass}/{_lastFile}: send the files ordered by class, then file name " +
                      "(ordinal, as the ifcb client does), so that the server can pack them as they arrive.");
        }
        if (_writer is null)
        {
            _output = new FileStream(Path.Combine(_temp.FullName, $"{_sequence}.tar"), FileMode.CreateNew, FileAccess.Write,
                FileShare.None, 1 << 20);
            _writer = new ShardWriter(_output);
        }
        var sha = _writer.Add(className, fileName, content);
        _fingerprint.Add(new DatasetFile(className, fileName, content.LongLength, sha));
        _classCounts[className] = _classCounts.GetValueOrDefault(className) + 1;
        _totalBytes += content.LongLength;
        _lastClass = className;
        _lastFile = fileName;
        Count++;
        if (EndsShard(_writer.Length, className, fileName))
            await EndShardAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stores what is left, then makes the upload the dataset's current generation if the dataset is still as it was.</summary>
    /// <exception cref="InvalidDataException">No images were added.</exception>
    /// <exception cref="IfcbException">
    /// Aborted: another upload or a delete of the dataset finished first (nothing changed); Unavailable: shards of this
    /// upload vanished from storage before it could commit.
    /// </exception>
    public async Task<DatasetUploadResult> CommitAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        if (Count == 0)
            throw new InvalidDataException($"The upload of dataset {_name} has no images; nothing to store.");
        await EndShardAsync(cancellationToken).ConfigureAwait(false);
        _channel.Writer.TryComplete();
        await Task.WhenAll(_storing).ConfigureAwait(false);
        _finished = true;
        await _stop.CancelAsync().ConfigureAwait(false);
        await _renewing.ConfigureAwait(false);

        // The shards are renewed every quarter of the grace period while the upload runs; if it ran that long, once more
        // now, so that every one is known to be there, and recently renewed, when the generation naming them becomes
        // current. (In a shorter upload every shard was stored or renewed less than a quarter of the period ago.)
        var missing = new List<string>();
        if (DateTimeOffset.UtcNow - _started >= _options.GarbageGrace / 4)
        {
            foreach (var shard in _stored.Values)
            {
                if (!await _shards.RenewAsync(_name, shard.Sha256, cancellationToken).ConfigureAwait(false))
                    missing.Add(shard.Sha256);
            }
        }
        if (missing.Count > 0)
            throw IfcbException.Unavailable($"{missing.Count} of the {_stored.Count} shards this upload stored for dataset {_name} " +
                "vanished from storage before it could commit; nothing changed. Upload again: the shards still stored are not sent again.");

        var stored = StoredManifest.ForShards(_name, _fingerprint.Complete(), _classCounts, _totalBytes,
            [.. _stored.OrderBy(s => s.Key).Select(s => s.Value)]);
        var generation = await CommitManifestAsync(stored, cancellationToken).ConfigureAwait(false);
        await _collector.CollectAfterCommitAsync(_name, cancellationToken).ConfigureAwait(false);
        return new DatasetUploadResult((stored with { Generation = generation }).Describe(), _uploaded, _present)
        {
            ShardsUploaded = _shardsUploaded, ShardsPresent = _shardsPresent,
        };
    }

    public async ValueTask DisposeAsync()
    {
        _finished = true;
        _channel.Writer.TryComplete();
        await _stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll([.. _storing, _renewing]).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
        _writer?.Dispose();
        if (_output is not null)
            await _output.DisposeAsync().ConfigureAwait(false);
        try
        {
            _temp.Delete(recursive: true);
        }
        catch (IOException)
        {
        }
        _fingerprint.Dispose();
        _stop.Dispose();
    }

    private async Task EndShardAsync(CancellationToken cancellationToken)
    {
        if (_writer is null)
            return;
        var index = _writer.Complete();
        _writer.Dispose();
        _writer = null;
        var tarPath = _output!.Name;
        await _output.DisposeAsync().ConfigureAwait(false);
        _output = null;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        try
        {
            await _channel.Writer.WriteAsync(new PackedShard(_sequence++, index, tarPath), linked.Token).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            await Task.WhenAll(_storing).ConfigureAwait(false); // throws why storing stopped
            throw;
        }
    }

    private void ThrowIfStoringFailed()
    {
        if (_storing.FirstOrDefault(t => t.IsFaulted) is { } failed)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failed.Exception!.InnerException!);
        if (_storing.Any(t => t.IsCanceled))
            _stop.Token.ThrowIfCancellationRequested();
    }

    private async Task StoreShardsAsync()
    {
        try
        {
            await foreach (var shard in _channel.Reader.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                var members = shard.Index.Members.Count;
                if (await _shards.RenewAsync(_name, shard.Index.Shard, _stop.Token).ConfigureAwait(false))
                {
                    Interlocked.Add(ref _present, members);
                    Interlocked.Increment(ref _shardsPresent);
                }
                else
                {
                    await _shards.PutAsync(_name, shard.Index, shard.TarPath, _stop.Token).ConfigureAwait(false);
                    Interlocked.Add(ref _uploaded, members);
                    Interlocked.Increment(ref _shardsUploaded);
                }
                File.Delete(shard.TarPath);
                _stored[shard.Sequence] = new StoredShard(shard.Index.Shard, shard.Index.Bytes, members);
                _filesDone?.Report(Interlocked.Add(ref _done, members));
            }
        }
        catch
        {
            // The images still arriving have nowhere to go: stop the upload.
            _channel.Writer.TryComplete();
            throw;
        }
    }

    private async Task RenewPeriodicallyAsync()
    {
        var every = _options.GarbageGrace / 4;
        try
        {
            while (true)
            {
                await Task.Delay(every, _stop.Token).ConfigureAwait(false);
                foreach (var shard in _stored.Values)
                {
                    try
                    {
                        await _shards.RenewAsync(_name, shard.Sha256, _stop.Token).ConfigureAwait(false);
                    }
                    catch (RequestFailedException)
                    {
                        // a storage blip: the next round (or the commit's check) renews it
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Whether a shard of <paramref name="length"/> bytes ends after this image (see the class remarks).</summary>
    private bool EndsShard(long length, string className, string fileName)
    {
        if (length >= MaxShardFactor * _options.ShardBytes)
            return true;
        if (length < _options.ShardBytes)
            return false;
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes($"{className}/{fileName}"), hash);
        return BitConverter.ToUInt32(hash) % (uint)_options.ShardBoundaryOneIn == 0;
    }

    // Writes the generation, then makes it current if the dataset is still as the upload found it; returns its id.
    private async Task<string> CommitManifestAsync(StoredManifest manifest, CancellationToken cancellationToken)
    {
        var now = DateTimeOffset.UtcNow;
        var generation = $"{now.UtcDateTime:yyyyMMdd'T'HHmmssfff'Z'}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";
        var retired = _head.Stored?.RetiredAfterReplacing(now, _options.GarbageGrace) ?? [];
        var stored = manifest.AsGeneration(generation, now, retired);
        var generationBlob = await _manifests.CreateGenerationAsync(_name, generation, stored, cancellationToken).ConfigureAwait(false);
        try
        {
            await _manifests.ReplaceAsync(_name, stored, _head.ETag, cancellationToken).ConfigureAwait(false);
            return generation;
        }
        catch (RequestFailedException e) when (e.Status is 404 or 409 or 412)
        {
            // Left behind, it would be collected later.
            await _collector.TryDeleteAsync(generationBlob, etag: null, CancellationToken.None).ConfigureAwait(false);
            throw new IfcbException(ErrorKind.Aborted,
                $"Dataset {_name} changed while this upload was running: another upload of dataset {_name} finished first " +
                "(or it was deleted), so this upload did not replace it. Check `ifcb dataset show`, then upload again to make " +
                "these files the dataset.", e);
        }
    }
}
