using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Specialized;
using Azure.Storage.Sas;

namespace Ifcb.Platform.Storage;

/// <summary>
/// Read-only, time-limited access to one service's blobs for another service: a shared access signature (SAS) URI.
/// The owner of the data creates it and hands it over (in a bus message or reply); the reader opens it with
/// <c>new BlobClient(uri)</c> / <c>new BlobContainerClient(uri)</c> and never learns the owner's container names or keys.
/// Signed with the account key where the client holds one (Azurite, connection strings), else with a user delegation
/// key (managed identities in Azure), so the same code serves both.
/// </summary>
public static class BlobReadGrant
{
    /// <summary>A URI that lets its holder read (not write or delete) <paramref name="blob"/> until <paramref name="expiresOn"/>.</summary>
    public static async Task<Uri> ForBlobAsync(BlobClient blob, DateTimeOffset expiresOn, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(blob);
        var sas = new BlobSasBuilder(BlobSasPermissions.Read, expiresOn)
        {
            BlobContainerName = blob.BlobContainerName,
            BlobName = blob.Name,
            Resource = "b",
        };
        return blob.CanGenerateSasUri
            ? blob.GenerateSasUri(sas)
            : await SignWithDelegationKeyAsync(blob.GetParentBlobContainerClient().GetParentBlobServiceClient(), blob.Uri, sas,
                cancellationToken);
    }

    /// <summary>
    /// A URI that lets its holder list and read the blobs of <paramref name="container"/> until
    /// <paramref name="expiresOn"/>.
    /// </summary>
    public static async Task<Uri> ForContainerAsync(BlobContainerClient container, DateTimeOffset expiresOn,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(container);
        var sas = new BlobSasBuilder(BlobContainerSasPermissions.Read | BlobContainerSasPermissions.List, expiresOn)
        {
            BlobContainerName = container.Name,
            Resource = "c",
        };
        return container.CanGenerateSasUri
            ? container.GenerateSasUri(sas)
            : await SignWithDelegationKeyAsync(container.GetParentBlobServiceClient(), container.Uri, sas, cancellationToken);
    }

    private static async Task<Uri> SignWithDelegationKeyAsync(BlobServiceClient service, Uri resource, BlobSasBuilder sas,
        CancellationToken cancellationToken)
    {
        var key = await service.GetUserDelegationKeyAsync(DateTimeOffset.UtcNow.AddMinutes(-5), sas.ExpiresOn, cancellationToken);
        return new BlobUriBuilder(resource) { Sas = sas.ToSasQueryParameters(key.Value, service.AccountName) }.ToUri();
    }
}
