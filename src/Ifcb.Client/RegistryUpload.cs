using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using Ifcb.Protos;

namespace Ifcb.Client;

/// <summary>CI registration: streams a checkpoint to Registry.RegisterVersion (header first, then data chunks).</summary>
public static class RegistryUpload
{
    public const int ChunkSize = 256 * 1024;

    /// <summary>The deadline of one upload attempt: this much for the call, plus <see cref="UploadSecondsPerMiB"/> per MiB.</summary>
    public static readonly TimeSpan UploadBaseDeadline = TimeSpan.FromMinutes(2);

    /// <summary>Seconds allowed per MiB of checkpoint (a 1 MiB/s link; a 100 MB checkpoint gets 3.6 min in all).</summary>
    public const double UploadSecondsPerMiB = 1;

    /// <summary>The deadline of one attempt to upload <paramref name="size"/> bytes.</summary>
    public static TimeSpan UploadDeadline(long size) =>
        UploadBaseDeadline + TimeSpan.FromSeconds(UploadSecondsPerMiB * size / (1024.0 * 1024.0));

    /// <summary>
    /// Whether a failed registration may be sent again, whole: with an idempotency key the registry returns the
    /// version of an earlier attempt that got through, so repeating is safe after the service was unavailable, did
    /// not answer in time, or asked for a retry (Aborted: another registration with the key is still in progress, or
    /// contention on the version number). Not after ResourceExhausted: the registry uses it for its size and
    /// version-number limits, which no retry changes. Without a key, only when nothing reached the registry.
    /// </summary>
    public static bool MayResend(RegisterVersionHeader header, Exception failure)
    {
        ArgumentNullException.ThrowIfNull(header);
        return failure is RpcException rpc && (CallRetry.NeverReachedServer(rpc) || (header.IdempotencyKey.Length > 0
            && rpc.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Aborted));
    }

    /// <summary>
    /// Registers <paramref name="checkpoint"/> as a new version of <c>header.Name</c>. When <c>header.Sha256</c> or
    /// <c>header.Size</c> is not set, they are computed from the stream first (which must then be seekable); when set,
    /// they are sent as declared and the registry verifies them (DataLoss on a mismatch).
    /// </summary>
    /// <param name="bytesSent">Reports the number of checkpoint bytes sent so far (from 0 again when an attempt is repeated).</param>
    /// <param name="retry">
    /// When a failed attempt is sent again, whole, from the start of the stream (which must then be seekable); see
    /// <see cref="MayResend"/>. Default: one attempt. The budget is extended by each attempt's upload deadline, so a
    /// large upload that failed late may still be repeated.
    /// </param>
    /// <returns>The version (READY), or the existing version when the idempotency key was used before.</returns>
    /// <exception cref="RpcException">The registry refused or failed the registration; the status says why.</exception>
    public static async Task<ModelVersion> RegisterCheckpointAsync(Registry.RegistryClient client, RegisterVersionHeader header,
        Stream checkpoint, Metadata? headers = null, IProgress<long>? bytesSent = null, CallRetry? retry = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(checkpoint);

        header = header.Clone();
        if (string.IsNullOrEmpty(header.Sha256) || header.Size <= 0)
        {
            if (!checkpoint.CanSeek)
                throw new ArgumentException("Declare header.Sha256 and header.Size, or pass a seekable stream so they can be computed.",
                    nameof(checkpoint));
            var start = checkpoint.Position;
            header.Sha256 = Convert.ToHexStringLower(await SHA256.HashDataAsync(checkpoint, cancellationToken));
            header.Size = checkpoint.Position - start;
            checkpoint.Position = start;
        }

        retry ??= CallRetry.None;
        if (retry.MaxAttempts > 1 && !checkpoint.CanSeek)
            throw new ArgumentException("A registration that may be repeated needs a seekable stream.", nameof(checkpoint));
        var origin = checkpoint.CanSeek ? checkpoint.Position : 0;
        var deadline = UploadDeadline(header.Size);
        var policy = retry with { Budget = retry.Budget + (deadline * retry.MaxAttempts) };
        return await policy.ExecuteAsync("Registry.RegisterVersion", (attempt, _) =>
        {
            if (attempt > 1)
                checkpoint.Position = origin;
            return SendAsync(client, header, checkpoint, headers, bytesSent, DateTime.UtcNow + deadline, cancellationToken);
        }, failure => MayResend(header, failure), cancellationToken);
    }

    private static async Task<ModelVersion> SendAsync(Registry.RegistryClient client, RegisterVersionHeader header, Stream checkpoint,
        Metadata? headers, IProgress<long>? bytesSent, DateTime deadline, CancellationToken cancellationToken)
    {
        using var call = client.RegisterVersion(headers, deadline, cancellationToken);
        var upload = new UploadStream<RegisterVersionChunk, ModelVersion>(call, cancellationToken);
        if (await upload.WriteAsync(new RegisterVersionChunk { Header = header }) && await AcceptedAsync(call))
        {
            var buffer = new byte[ChunkSize];
            long sent = 0;
            int read;
            while ((read = await checkpoint.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken)) > 0)
            {
                if (!await upload.WriteAsync(new RegisterVersionChunk { Data = ByteString.CopyFrom(buffer, 0, read) }))
                    break;
                sent += read;
                bytesSent?.Report(sent);
            }
        }
        return await upload.CompleteAsync();
    }

    // The registry sends the "ifcb-send-data" response header once it accepts the header; a refusal arrives instead
    // (trailers only), and then no data is sent at all.
    private static async Task<bool> AcceptedAsync(AsyncClientStreamingCall<RegisterVersionChunk, ModelVersion> call)
    {
        try
        {
            var headers = await call.ResponseHeadersAsync;
            return headers.GetValue(UploadProtocol.SendDataHeader) == "1";
        }
        catch (RpcException)
        {
            return false; // the answer is the refusal; CompleteAsync throws it
        }
    }
}
