using Grpc.Core;

namespace Ifcb.Client;

/// <summary>
/// The sending side of a client-streaming upload whose server may answer before it has read everything: a refusal
/// (size limit, bad header, no API key) or a repeated idempotency key. A write waiting for HTTP/2 flow-control credit
/// is not always released when the server completes the call — the client then waited forever — so every write races
/// the response: once the answer is in, sending stops and <see cref="CompleteAsync"/> returns it (or throws its
/// <see cref="RpcException"/>).
/// </summary>
public sealed class UploadStream<TRequest, TResponse>(
    AsyncClientStreamingCall<TRequest, TResponse> call, CancellationToken cancellationToken)
{
    /// <summary>The server has answered; nothing more is sent.</summary>
    public bool Answered { get; private set; }

    /// <summary>Sends <paramref name="message"/>; false (nothing sent) once the server has answered.</summary>
    public async Task<bool> WriteAsync(TRequest message)
    {
        if (Answered)
            return false;
        var write = call.RequestStream.WriteAsync(message, cancellationToken);
        if (await Task.WhenAny(write, call.ResponseAsync).ConfigureAwait(false) != write)
        {
            Answered = true;
            // Disposing the call cancels the pending write; observe its exception so it is not reported as unobserved.
            _ = write.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted,
                TaskScheduler.Default);
            return false;
        }
        try
        {
            await write.ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is RpcException or InvalidOperationException && !cancellationToken.IsCancellationRequested)
        {
            Answered = true; // the call ended while writing; the response says how
            return false;
        }
    }

    /// <summary>Ends the request stream (unless the server already answered) and returns the server's answer.</summary>
    /// <exception cref="RpcException">The server refused or failed the upload; the status says why.</exception>
    public async Task<TResponse> CompleteAsync()
    {
        if (!Answered)
        {
            try
            {
                await call.RequestStream.CompleteAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is RpcException or InvalidOperationException && !cancellationToken.IsCancellationRequested)
            {
            }
        }
        return await call.ResponseAsync.ConfigureAwait(false);
    }
}
