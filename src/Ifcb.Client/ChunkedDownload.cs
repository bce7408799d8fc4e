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

    public static Task<(string Sha256, long Size)> CopyToAsync(IAsyncStreamReader<DataChunk> chunks, Stream destination,
        IProgress<long>? bytesDone = null, CancellationToken cancellationToken = default) =>
        CopyToAsync(chunks, destination, c => (c.Data.Memory, c.TotalSize, c.Sha256), bytesDone, cancellationToken);
}
