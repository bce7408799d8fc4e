using System.IO.Pipelines;
using Grpc.Core;
using Ifcb.Protos;

namespace Ifcb.Registry;

/// <summary>
/// Presents the data chunks of a RegisterVersion call as a <see cref="Stream"/>, through a bounded pipe, so a
/// checkpoint of any size passes from the client to blob storage with only a few MiB in memory. A pump copies chunks
/// into the pipe while the consumer (the engine's upload) reads from it; the pipe's back-pressure paces the client.
/// </summary>
internal static class UploadedCheckpoint
{
    private const long PauseWriterBytes = 8L * 1024 * 1024;

    /// <summary>
    /// Runs <paramref name="consume"/> on the remaining messages of <paramref name="chunks"/> (all must be data). If
    /// the consumer returns without reading everything (a repeated idempotency key), the rest of the declared bytes
    /// is read and dropped before the answer goes out: answering while the client's data is still in flight made
    /// Kestrel reset the HTTP/2 connection (STREAM_CLOSED) and the client lost the answer. A failure of the client
    /// stream (a second header, a disconnect, no message within <paramref name="idleTimeout"/>) is what the caller
    /// sees, rather than the consumer's reaction to it.
    /// </summary>
    public static async Task<T> ConsumeAsync<T>(IAsyncStreamReader<RegisterVersionChunk> chunks, long declaredSize, TimeSpan idleTimeout,
        Func<Stream, Task<T>> consume, CancellationToken cancellationToken)
    {
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: PauseWriterBytes, resumeWriterThreshold: PauseWriterBytes / 2,
            useSynchronizationContext: false));
        using var stopPump = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // Set before the pipe is failed, so the consumer's failure can always be traced back to it.
        RpcException? clientFailure = null;
        var pump = PumpAsync();
        try
        {
            T result;
            await using (var content = pipe.Reader.AsStream(leaveOpen: true))
                result = await consume(content);
            await pipe.Reader.CompleteAsync(); // the pump drops whatever is left of the declared bytes
            await pump;
            return result;
        }
        catch (Exception) when (clientFailure is not null)
        {
            throw clientFailure;
        }
        finally
        {
            await pipe.Reader.CompleteAsync();
            await stopPump.CancelAsync();
            try
            {
                await pump;
            }
            catch (Exception e) when (e is OperationCanceledException or RpcException or IOException or InvalidOperationException)
            {
                // Already reported through the pipe, or the pump was stopped because the consumer is done.
            }
        }

        async Task PumpAsync()
        {
            var writer = pipe.Writer;
            var dropping = false;
            long received = 0;
            try
            {
                while (await NextWithinAsync(chunks, idleTimeout, stopPump.Token, stalled => clientFailure = stalled))
                {
                    if (chunks.Current.PartCase != RegisterVersionChunk.PartOneofCase.Data)
                    {
                        throw clientFailure = new RpcException(new Status(StatusCode.InvalidArgument,
                            "Only the first RegisterVersion message may be a header; send the checkpoint bytes as data chunks after it."));
                    }

                    received += chunks.Current.Data.Length;
                    if (dropping)
                    {
                        if (received > declaredSize)
                            return; // more than declared: stop reading and let the answer go
                        continue;
                    }
                    var flushed = await writer.WriteAsync(chunks.Current.Data.Memory, stopPump.Token);
                    dropping = flushed.IsCompleted; // the consumer has its answer; drop the rest
                }

                await writer.CompleteAsync();
            }
            catch (Exception e)
            {
                await writer.CompleteAsync(e);
                throw;
            }
        }
    }

    /// <summary>
    /// The client's next message, waiting at most <paramref name="idleTimeout"/>: a client that stops sending must not
    /// hold its PENDING version (and a request thread) until the upload deadline. On a stall, reports the failure to
    /// <paramref name="stalled"/> before throwing it.
    /// </summary>
    public static async Task<bool> NextWithinAsync(IAsyncStreamReader<RegisterVersionChunk> chunks, TimeSpan idleTimeout,
        CancellationToken cancellationToken, Action<RpcException>? stalled = null)
    {
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        idle.CancelAfter(idleTimeout);
        try
        {
            return await chunks.MoveNext(idle.Token);
        }
        catch (OperationCanceledException) when (idle.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            var failure = new RpcException(new Status(StatusCode.DeadlineExceeded,
                $"No RegisterVersion message arrived for {idleTimeout.TotalSeconds:0} s ({RegistryLimits.UploadIdleTimeoutKey}); " +
                "the upload was abandoned and nothing was stored. Register again."));
            stalled?.Invoke(failure);
            throw failure;
        }
    }
}
