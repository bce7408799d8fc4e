using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Storage.Blobs;

namespace Ifcb.Registry.Engine.Tests;

/// <summary>A clock the test moves by hand; timers (deadlines) still run on real time.</summary>
internal sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;

    public ManualClock()
        : this(new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero))
    {
    }

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}

/// <summary>
/// Storage as one registry process sees it, with faults a test can switch on: <see cref="Crash"/> makes every later
/// request fail (the process died: nothing it does afterwards reaches storage), and <see cref="PauseAt"/> holds the
/// first request that matches until the test releases or kills it, which lets a test interleave two operations at an
/// exact blob write. <see cref="Responses"/> records what each request got back.
/// </summary>
internal sealed class FaultyStorage : HttpPipelinePolicy
{
    private readonly Lock _lock = new();
    private readonly System.Collections.Concurrent.ConcurrentQueue<(string Method, string Path, long Bytes)> _responses = new();
    private volatile bool _crashed;
    private Pause? _pause;

    private FaultyStorage()
    {
    }

    public BlobContainerClient Container { get; private set; } = null!;

    public static FaultyStorage Over(AzuriteFixture azurite, BlobContainerClient container)
    {
        var faults = new FaultyStorage();
        var options = new BlobClientOptions { Retry = { MaxRetries = 0 } };
        options.AddPolicy(faults, HttpPipelinePosition.PerCall);
        faults.Container = new BlobContainerClient(azurite.Azurite.ConnectionString, container.Name, options);
        return faults;
    }

    public void Crash() => _crashed = true;

    /// <summary>Every completed request: method, blob path and the response body's length (Content-Length, 0 if none).</summary>
    public IReadOnlyCollection<(string Method, string Path, long Bytes)> Responses => _responses;

    /// <summary>Holds the first request for which <paramref name="matches"/>(method, blob path) is true.</summary>
    public Pause PauseAt(Func<string, string, bool> matches)
    {
        var pause = new Pause(matches);
        lock (_lock)
        {
            _pause = pause;
        }

        return pause;
    }

    public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        BeforeAsync(message).AsTask().GetAwaiter().GetResult();
        ProcessNext(message, pipeline);
        Record(message);
    }

    public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        await BeforeAsync(message).ConfigureAwait(false);
        await ProcessNextAsync(message, pipeline).ConfigureAwait(false);
        Record(message);
    }

    private async ValueTask BeforeAsync(HttpMessage message)
    {
        ThrowIfCrashed();
        Pause? pause = null;
        lock (_lock)
        {
            if (_pause is { } armed && armed.Matches(message.Request.Method.ToString(), message.Request.Uri.Path))
            {
                pause = armed;
                _pause = null;
            }
        }

        if (pause is not null)
        {
            pause.Reached.TrySetResult();
            if (!await pause.Released.Task.ConfigureAwait(false))
            {
                _crashed = true;
            }
        }

        ThrowIfCrashed();
    }

    private void Record(HttpMessage message) =>
        _responses.Enqueue((message.Request.Method.ToString(), message.Request.Uri.Path,
            message.HasResponse && message.Response.Headers.ContentLength is { } length ? length : 0));

    private void ThrowIfCrashed()
    {
        if (_crashed)
        {
            throw new RequestFailedException("The registry process crashed; this request never reached storage.");
        }
    }

    public sealed class Pause(Func<string, string, bool> matches)
    {
        public Func<string, string, bool> Matches { get; } = matches;

        /// <summary>Completes when the matching request is being held.</summary>
        public TaskCompletionSource Reached { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>True lets the request go on; false crashes the process instead.</summary>
        public TaskCompletionSource<bool> Released { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => Released.TrySetResult(true);

        public void CrashHere() => Released.TrySetResult(false);
    }
}

/// <summary>A checkpoint stream that fails part-way; <see cref="OnFailure"/> runs first (e.g. to crash the process).</summary>
internal sealed class FailingStream(byte[] bytes, int failAt, Action? onFailure = null) : Stream
{
    private int _position;

    public Action? OnFailure { get; } = onFailure;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_position >= failAt)
        {
            OnFailure?.Invoke();
            throw new IOException("The connection to the client was lost mid-upload.");
        }

        var count = Math.Min(buffer.Length, failAt - _position);
        bytes.AsSpan(_position, count).CopyTo(buffer);
        _position += count;
        return count;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>A checkpoint stream that sends its first bytes and then stalls until cancelled (a client that hangs).</summary>
internal sealed class StallingStream(byte[] bytes, int stallAt) : Stream
{
    private int _position;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_position >= stallAt)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
        }

        var count = Math.Min(buffer.Length, stallAt - _position);
        bytes.AsMemory(_position, count).CopyTo(buffer);
        _position += count;
        return count;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
