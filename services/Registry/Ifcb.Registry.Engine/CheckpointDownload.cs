using Ifcb.Platform;

namespace Ifcb.Registry.Engine;

/// <summary>
/// An open checkpoint: the version it belongs to and a stream of its bytes. With download verification on (the
/// default), the read that reaches the end throws <see cref="IfcbException"/> (DataLoss) if the bytes do not
/// match <see cref="Sha256"/> and <see cref="SizeBytes"/>. Dispose to release the connection.
/// </summary>
public sealed class CheckpointDownload(ModelVersion version, Stream content) : IAsyncDisposable, IDisposable
{
    public ModelVersion Version { get; } = version;

    public Stream Content { get; } = content;

    public string Sha256 => Version.Sha256;

    public long SizeBytes => Version.SizeBytes;

    public ValueTask DisposeAsync() => Content.DisposeAsync();

    public void Dispose() => Content.Dispose();
}
