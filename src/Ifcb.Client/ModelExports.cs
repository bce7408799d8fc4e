using Ifcb.Contracts;
using Ifcb.Protos;

namespace Ifcb.Client;

/// <summary>
/// A registered version's ONNX export, written to <see cref="Path"/> and verified against the registry's size and SHA-256.
/// </summary>
/// <param name="Cached">True when the registry served the export it had cached, false when it exported for this call.</param>
public sealed record ExportedModel(ModelVersion Version, string Path, string Sha256, long Size, bool Cached);

/// <summary>Downloads a registered version exported by the registry (Registry.ExportVersion).</summary>
public static class ModelExports
{
    /// <summary>
    /// Resolves <paramref name="reference"/> to one version and downloads its ONNX export to the path
    /// <paramref name="destination"/> picks, verifying size and SHA-256; the bytes go to <c>PATH.partial</c> first and are
    /// moved into place only when verified. A transient failure starts the download again, as <paramref name="retry"/> allows.
    /// </summary>
    /// <param name="staticBatch">A fixed batch size to declare in the graph, or null for a dynamic one.</param>
    /// <exception cref="Grpc.Core.RpcException">
    /// NotFound, FailedPrecondition (not READY), InvalidArgument, or the registry failed.
    /// </exception>
    /// <exception cref="InvalidDataException">The bytes do not match the size or SHA-256 the registry declared.</exception>
    public static async Task<ExportedModel> ExportAsync(Registry.RegistryClient registry, ModelRef reference, int? staticBatch,
        Func<ModelVersion, string> destination, CallRetry retry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(retry);
        var (version, path) = await ModelDownloads.ResolveAsync(registry, reference, destination, cancellationToken);
        var partial = path + ".partial";
        // Export the version resolved above, so a moving alias cannot change what is written between the calls.
        var request = new ExportVersionRequest
        {
            Version = new VersionRef { Name = version.Name, Version = version.Version },
            Format = "onnx",
            StaticBatch = staticBatch ?? 0,
        };
        ExportInfo? info = null;
        (string Sha256, long Size) downloaded;
        await using (var file = File.Create(partial))
        {
            downloaded = await ChunkedDownload.DownloadAsync("Registry.ExportVersion",
                token => registry.ExportVersion(request, cancellationToken: token), file, message =>
                {
                    info = message.Info ?? info;
                    return message.Chunk is { } chunk
                        ? (chunk.Data.Memory, chunk.TotalSize, chunk.Sha256)
                        : (ReadOnlyMemory<byte>.Empty, 0, "");
                }, retry, cancellationToken: cancellationToken);
        }
        if (info is null)
            throw new InvalidDataException("The registry's export stream did not begin with its description (ExportInfo).");
        File.Move(partial, path, overwrite: true);
        return new ExportedModel(info.Version, path, downloaded.Sha256, downloaded.Size, info.Cached);
    }
}
