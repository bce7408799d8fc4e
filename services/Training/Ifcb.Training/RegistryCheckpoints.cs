using Grpc.Net.Client;
using Ifcb.Client;
using Ifcb.Contracts;
using Ifcb.Platform;
using Ifcb.Models.Checkpoints;
using Ifcb.Protos;

namespace Ifcb.Training;

/// <summary>
/// Registered models as the Training service's RUN jobs need them: resolve a <see cref="ModelRef"/> through
/// the Registry service's gRPC API (its address comes from service discovery) and fetch the checkpoint.
/// </summary>
public sealed class RegistryCheckpoints(IConfiguration configuration) : IDisposable
{
    private readonly Lazy<GrpcChannel> _channel = new(() => GrpcChannel.ForAddress(
        configuration["services:registry:grpc:0"] is { Length: > 0 } url
            ? url
            : throw new InvalidOperationException("The Registry service's address is unknown (services:registry:grpc:0); run under Ifcb.AppHost.")));

    private Registry.RegistryClient Client => new(_channel.Value);

    /// <summary>The exact version a reference points at now (NotFound/InvalidArgument come back as RpcException).</summary>
    /// <exception cref="IfcbException">InvalidArgument: not a <see cref="ModelRef"/>.</exception>
    public async Task<ModelVersion> ResolveAsync(string reference, CancellationToken cancellationToken) =>
        await Client.GetVersionAsync(ModelRef.TryParse(reference, out var parsed, out var error)
            ? parsed.ToVersionRef()
            : throw IfcbException.InvalidArgument(error), cancellationToken: cancellationToken);

    /// <summary>
    /// Downloads NAME/VERSION's checkpoint (size and SHA-256 verified) into a temporary file and loads it from there: the
    /// weights stream from the file into the model once, never as a second copy in memory (checkpoints reach gigabytes).
    /// </summary>
    public async Task<LoadedCheckpoint> LoadAsync(ModelRef version, CancellationToken cancellationToken)
    {
        var path = Path.Combine(Path.GetTempPath(), $"ifcb-checkpoint-{Guid.NewGuid():N}.ifcbmodel");
        await using var file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16,
            FileOptions.DeleteOnClose | FileOptions.Asynchronous);
        using (var call = Client.DownloadCheckpoint(version.ToVersionRef(), cancellationToken: cancellationToken))
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
