using Grpc.Net.ClientFactory;
using Ifcb.Client;
using Ifcb.Contracts;
using Ifcb.Models.Checkpoints;
using Ifcb.Platform;
using Ifcb.Protos;

namespace Ifcb.Training;

/// <summary>
/// Registered models as the Training service's RUN jobs need them: resolve a <see cref="ModelRef"/> through
/// the Registry service's gRPC API and fetch the checkpoint. The client is the one <see cref="AddRegistryClient"/>
/// registers: its address comes from service discovery. Its calls carry <see cref="ReadKeySetting"/> when set.
/// </summary>
public sealed class RegistryCheckpoints(GrpcClientFactory clients, IConfiguration configuration)
{
    /// <summary>
    /// A Registry key (a reader's is enough) for these reads, needed where the Registry sets Ifcb:Registry:RequireKeyForReads;
    /// unset, the reads are anonymous. Training holds only the bootstrap key's SHA-256, so it cannot use that one.
    /// </summary>
    public const string ReadKeySetting = "Ifcb:Registry:ReadKey";

    private readonly string? _readKey = configuration[ReadKeySetting] is { Length: > 0 } key ? key.Trim() : null;

    /// <summary>
    /// Registers the Registry's gRPC client: the address is the AppHost's reference to the Registry's "grpc" endpoint
    /// (configuration services:registry:grpc), resolved by service discovery.
    /// </summary>
#pragma warning disable EXTEXP0001
    public static void AddRegistryClient(IServiceCollection services) =>
        services.AddGrpcClient<Registry.RegistryClient>(o => o.Address = new Uri("http://_grpc.registry"))
            // Every call carries its own deadline; the HTTP defaults' 30-second total timeout would cut long checkpoint
            // downloads, and their retries would resend streaming calls. (The API is marked for evaluation only; it is
            // the documented way to take the defaults' handler off one client.)
            .RemoveAllResilienceHandlers();
#pragma warning restore EXTEXP0001

    private Registry.RegistryClient Client => clients.CreateClient<Registry.RegistryClient>(nameof(Registry.RegistryClient));

    private Grpc.Core.Metadata? ReadKey => _readKey is null ? null : new Grpc.Core.Metadata { { "x-api-key", _readKey } };

    /// <summary>The exact version a reference points at now (NotFound/InvalidArgument come back as RpcException).</summary>
    /// <exception cref="IfcbException">InvalidArgument: not a <see cref="ModelRef"/>.</exception>
    public async Task<ModelVersion> ResolveAsync(string reference, CancellationToken cancellationToken) =>
        await Client.GetVersionAsync(ModelRef.TryParse(reference, out var parsed, out var error)
            ? parsed.ToVersionRef()
            : throw IfcbException.InvalidArgument(error), ReadKey, cancellationToken: cancellationToken);

    /// <summary>
    /// Downloads NAME/VERSION's checkpoint (size and SHA-256 verified) to <paramref name="path"/>, unless a file is there
    /// already (versions never change): written beside it and moved into place once verified.
    /// </summary>
    public async Task<string> DownloadAsync(ModelRef version, string path, CancellationToken cancellationToken)
    {
        if (File.Exists(path))
            return path;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var partial = $"{path}.{Guid.NewGuid():N}.partial";
        try
        {
            await using (var file = File.Create(partial))
            using (var call = Client.DownloadCheckpoint(version.ToVersionRef(), ReadKey, cancellationToken: cancellationToken))
            {
                await ChunkedDownload.CopyToAsync(call.ResponseStream, file, c => (c.Data.Memory, c.TotalSize, c.Sha256),
                    cancellationToken: cancellationToken);
            }
            File.Move(partial, path, overwrite: true);
            return path;
        }
        finally
        {
            File.Delete(partial);
        }
    }

    /// <summary>
    /// Downloads NAME/VERSION's checkpoint (size and SHA-256 verified) into a temporary file and loads it from there: the
    /// weights stream from the file into the model once, never as a second copy in memory (checkpoints reach gigabytes).
    /// </summary>
    public async Task<LoadedCheckpoint> LoadAsync(ModelRef version, CancellationToken cancellationToken)
    {
        var path = Path.Combine(Path.GetTempPath(), $"ifcb-checkpoint-{Guid.NewGuid():N}.ifcbmodel");
        await using var file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16,
            FileOptions.DeleteOnClose | FileOptions.Asynchronous);
        using (var call = Client.DownloadCheckpoint(version.ToVersionRef(), ReadKey, cancellationToken: cancellationToken))
        {
            await ChunkedDownload.CopyToAsync(call.ResponseStream, file, c => (c.Data.Memory, c.TotalSize, c.Sha256),
                cancellationToken: cancellationToken);
        }
        file.Position = 0;
        return Checkpoint.Load(file);
    }
}
