namespace Ifcb.Platform.Storage;

/// <summary>
/// How a blob records the SHA-256 of its bytes: lowercase hex in the metadata entry <see cref="Sha256Metadata"/>,
/// written in the same request as the bytes. Training's artifacts and the registry's checkpoints carry it, so a
/// checkpoint handed from one to the other needs no download to know its hash.
/// </summary>
public static class BlobChecksum
{
    public const string Sha256Metadata = "sha256";
}
