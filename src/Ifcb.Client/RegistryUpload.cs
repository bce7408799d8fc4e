using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using Ifcb.Protos;

namespace Ifcb.Client;

/// <summary>CI registration: streams a checkpoint to Registry.RegisterVersion (header first, then data chunks).</summary>
public static class RegistryUpload
{
    public const int ChunkSize = 256 * 1024;

    /// <summary>
    /// Registers <paramref name="checkpoint"/> as a new version of <c>header.Name</c>. When <c>header.Sha256</c> or
    /// <c>header.Size</c> is not set, they are computed from the stream first (which must then be seekable); when set,
    /// they are sent as declared and the registry verifies them (DataLoss on a mismatch).
    /// </summary>
    /// <param name="bytesSent">Reports the number of checkpoint bytes sent so far.</param>
    /// <returns>The version (READY), or the existing version when the idempotency key was used before.</returns>
    /// <exception cref="RpcException">The registry refused or failed the registration; the status says why.</exception>
    public static async Task<ModelVersion> RegisterCheckpointAsync(Registry.RegistryClient client, RegisterVersionHeader header,
        Stream checkpoint, Metadata? headers = null, IProgress<long>? bytesSent = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(checkpoint);

        header = header.Clone();
        if (string.IsNullOrEmpty(header.Sha256) || header.Size <= 0)
        {
            if (!checkpoint.CanSeek)
                throw new ArgumentException("Declare header.Sha256 and header.Size, or pass a seekable stream so they can be computed.", nameof(checkpoint));
            var start = checkpoint.Position;
            header.Sha256 = Convert.ToHexStringLower(await SHA256.HashDataAsync(checkpoint, cancellationToken));
            header.Size = checkpoint.Position - start;
            checkpoint.Position = start;
        }

        using var call = client.RegisterVersion(headers, cancellationToken: cancellationToken);
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
