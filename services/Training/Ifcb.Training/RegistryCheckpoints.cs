using Grpc.Net.Client;
using Ifcb.Client;
using Ifcb.Models.Checkpoints;
using Ifcb.Protos;

namespace Ifcb.Training;

/// <summary>
/// Registered models as the Training service's RUN jobs need them: resolve NAME, NAME/VERSION or NAME@ALIAS through
/// the Registry service's gRPC API (its address comes from service discovery) and fetch the checkpoint.
/// </summary>
public sealed class RegistryCheckpoints(IConfiguration configuration) : IDisposable
{
    private readonly Lazy<GrpcChannel> _channel = new(() => GrpcChannel.ForAddress(
        configuration["services:registry:grpc:0"] is { Length: > 0 } url
            ? url
            : throw new InvalidOperationException("The Registry service's address is unknown (services:registry:grpc:0); run under Ifcb.AppHost.")));

    private Registry.RegistryClient Client => new(_channel.Value);

    public static VersionRef Parse(string reference)
    {
        var at = reference.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
            return new VersionRef { Name = reference[..at], Alias = reference[(at + 1)..] };
        var slash = reference.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0 && int.TryParse(reference[(slash + 1)..], System.Globalization.CultureInfo.InvariantCulture, out var version))
            return new VersionRef { Name = reference[..slash], Version = version };
        return new VersionRef { Name = reference };
    }

    /// <summary>The exact version a reference points at now (NotFound/InvalidArgument come back as RpcException).</summary>
    public async Task<ModelVersion> ResolveAsync(string reference, CancellationToken cancellationToken) =>
        await Client.GetVersionAsync(Parse(reference), cancellationToken: cancellationToken);

    /// <summary>
    /// Downloads NAME/VERSION's checkpoint (size and SHA-256 verified) into a temporary file and loads it from there: the
    /// weights stream from the file into the model once, never as a second copy in memory (checkpoints reach gigabytes).
    /// </summary>
    public async Task<LoadedCheckpoint> LoadAsync(string name, int version, CancellationToken cancellationToken)
    {
        var path = Path.Combine(Path.GetTempPath(), $"ifcb-checkpoint-{Guid.NewGuid():N}.ifcbmodel");
        await using var file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16,
            FileOptions.DeleteOnClose | FileOptions.Asynchronous);
        using (var call = Client.DownloadCheckpoint(new VersionRef { Name = name, Version = version }, cancellationToken: cancellationToken))
            await ChunkedDownload.CopyToAsync(call.ResponseStream, file, c => (c.Data.Memory, c.TotalSize, c.Sha256), cancellationToken: cancellationToken);
        file.Position = 0;
        return Checkpoint.Load(file);
    }

    public void Dispose()
    {
        if (_channel.IsValueCreated)
            _channel.Value.Dispose();
    }
}
