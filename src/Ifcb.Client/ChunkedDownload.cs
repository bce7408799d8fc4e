using System.Security.Cryptography;
using Grpc.Core;
using Ifcb.Protos;

namespace Ifcb.Client;

/// <summary>Writes a server stream of chunks (total size first, SHA-256 last) to a stream, verifying both.</summary>
public static class ChunkedDownload
{
    /// <returns>The verified SHA-256 (hex) and byte count.</returns>
    /// <exception cref="InvalidDataException">The bytes do not match the size or SHA-256 the server declared.</exception>
    public static async Task<(string Sha256, long Size)> CopyToAsync<TChunk>(IAsyncStreamReader<TChunk> chunks, Stream destination,
        Func<TChunk, (ReadOnlyMemory<byte> Data, long TotalSize, string Sha256)> parts, IProgress<long>? bytesDone = null,
        CancellationToken cancellationToken = default)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long size = 0, declaredSize = -1;
        string? declaredSha = null;
        await foreach (var chunk in chunks.ReadAllAsync(cancellationToken))
        {
            var (data, totalSize, chunkSha) = parts(chunk);
            if (totalSize > 0 && declaredSize < 0)
                declaredSize = totalSize;
            if (!string.IsNullOrEmpty(chunkSha))
                declaredSha = chunkSha;
            sha.AppendData(data.Span);
            await destination.WriteAsync(data, cancellationToken);
            size += data.Length;
            bytesDone?.Report(size);
        }
        var actual = Convert.ToHexStringLower(sha.GetHashAndReset());
        if (declaredSize >= 0 && declaredSize != size)
            throw new InvalidDataException($"Download ended after {size} bytes; the server announced {declaredSize}.");
        if (declaredSha is not null && !string.Equals(declaredSha, actual, StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException($"Downloaded bytes have SHA-256 {actual}; the server announced {declaredSha}.");
        return (actual, size);
    }

    /// <summary>
    /// Opens a download with <paramref name="open"/> and writes it to <paramref name="destination"/>, verified like
    /// <see cref="CopyToAsync{TChunk}"/>. A download that fails for a transient reason (the service restarting, the
    /// connection lost) is started again from the first byte, the destination cut back to where it began, as
    /// <paramref name="retry"/> allows: every download RPC is a read, so repeating it is safe.
    /// </summary>
    /// <param name="open">Starts the server-streaming call (a new one per attempt).</param>
    /// <param name="destination">Must be seekable when <paramref name="retry"/> allows more than one attempt.</param>
    public static async Task<(string Sha256, long Size)> DownloadAsync<TChunk>(string call,
        Func<CancellationToken, AsyncServerStreamingCall<TChunk>> open, Stream destination,
        Func<TChunk, (ReadOnlyMemory<byte> Data, long TotalSize, string Sha256)> parts, CallRetry retry,
        IProgress<long>? bytesDone = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(open);
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(retry);
        if (retry.MaxAttempts > 1 && !destination.CanSeek)
            throw new ArgumentException("A download that may be repeated needs a seekable destination.", nameof(destination));
        var origin = destination.CanSeek ? destination.Position : 0;
        // A download's length depends on the file, not on the service's health: the budget bounds the waits between attempts only.
        var policy = retry with { Budget = TimeSpan.MaxValue / 2 };
        return await policy.ExecuteAsync(call, async (attempt, _) =>
        {
            if (attempt > 1)
            {
                destination.SetLength(origin);
                destination.Position = origin;
            }
            using var stream = open(cancellationToken);
            return await CopyToAsync(stream.ResponseStream, destination, parts, bytesDone, cancellationToken).ConfigureAwait(false);
        }, failure => failure is RpcException rpc && CallRetry.IsTransient(rpc.StatusCode), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc cref="DownloadAsync{TChunk}"/>
    public static Task<(string Sha256, long Size)> DownloadAsync(string call,
        Func<CancellationToken, AsyncServerStreamingCall<DataChunk>> open, Stream destination, CallRetry retry,
        IProgress<long>? bytesDone = null, CancellationToken cancellationToken = default) =>
        DownloadAsync(call, open, destination, c => (c.Data.Memory, c.TotalSize, c.Sha256), retry, bytesDone, cancellationToken);

    public static Task<(string Sha256, long Size)> CopyToAsync(IAsyncStreamReader<DataChunk> chunks, Stream destination,
        IProgress<long>? bytesDone = null, CancellationToken cancellationToken = default) =>
        CopyToAsync(chunks, destination, c => (c.Data.Memory, c.TotalSize, c.Sha256), bytesDone, cancellationToken);
}
