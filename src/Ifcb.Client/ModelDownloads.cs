using Ifcb.Contracts;
using Ifcb.Protos;

namespace Ifcb.Client;

/// <summary>
/// A registered version's checkpoint, written to <see cref="Path"/> and verified against the registry's size and
/// SHA-256.
/// </summary>
public sealed record DownloadedModel(ModelVersion Version, string Path, string Sha256, long Size);

/// <summary>Downloads registered checkpoints: resolve a <see cref="ModelRef"/> to one version, then fetch exactly that version.</summary>
public static class ModelDownloads
{
    /// <summary>
    /// Resolves <paramref name="reference"/> (NAME, NAME/VERSION, NAME/latest, NAME@ALIAS) and downloads that version's
    /// checkpoint to the path <paramref name="destination"/> picks for it, verifying size and SHA-256. The bytes go to
    /// <c>PATH.partial</c> first and are moved into place only when verified; a download that breaks for a transient
    /// reason starts again from the first byte, as <paramref name="retry"/> allows.
    /// </summary>
    /// <param name="destination">The file to write, given the resolved version (e.g. NAME-vVERSION.ifcbmodel).</param>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown model, version or alias; or the registry failed.</exception>
    /// <exception cref="InvalidDataException">The bytes do not match the size or SHA-256 the registry declared.</exception>
    public static async Task<DownloadedModel> DownloadAsync(Registry.RegistryClient registry, ModelRef reference,
        Func<ModelVersion, string> destination, CallRetry retry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(retry);
        var (version, path) = await ResolveAsync(registry, reference, destination, cancellationToken);
        var partial = path + ".partial";
        (string Sha256, long Size) downloaded;
        // Download the version resolved above, so a moving alias cannot change what is written between the calls.
        var exact = new VersionRef { Name = version.Name, Version = version.Version };
        await using (var file = File.Create(partial))
        {
            downloaded = await ChunkedDownload.DownloadAsync("Registry.DownloadCheckpoint",
                token => registry.DownloadCheckpoint(exact, cancellationToken: token),
                file, c => (c.Data.Memory, c.TotalSize, c.Sha256), retry, cancellationToken: cancellationToken);
        }
        File.Move(partial, path, overwrite: true);
        return new DownloadedModel(version, path, downloaded.Sha256, downloaded.Size);
    }

    /// <summary>
    /// Resolves <paramref name="reference"/> to one version and the full path <paramref name="destination"/> picks for it
    /// (its folder created), for the downloads that then fetch exactly that version.
    /// </summary>
    internal static async Task<(ModelVersion Version, string Path)> ResolveAsync(Registry.RegistryClient registry, ModelRef reference,
        Func<ModelVersion, string> destination, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(destination);
        var version = await registry.GetVersionAsync(reference.ToVersionRef(), cancellationToken: cancellationToken);
        var path = System.IO.Path.GetFullPath(destination(version));
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        return (version, path);
    }
}
