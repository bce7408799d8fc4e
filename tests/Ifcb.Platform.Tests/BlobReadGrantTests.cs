using Azure;
using Azure.Storage.Blobs;
using Ifcb.Platform.Storage;

namespace Ifcb.Platform.Tests;

/// <summary>
/// A read grant lets another service read what the owner granted and nothing more: Azurite checks the SAS signature,
/// permissions, scope and expiry as Azure Storage does.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class BlobReadGrantTests(AzuriteFixture fixture)
{
    private static readonly BinaryData Content = BinaryData.FromString("checkpoint bytes");

    [Fact]
    public async Task A_blob_grant_reads_that_blob_only_and_cannot_write_or_delete()
    {
        var container = await fixture.Azurite.CreateContainerAsync("grant");
        await container.GetBlobClient("jobs/a/best.ifcbmodel").UploadAsync(Content);
        await container.GetBlobClient("jobs/b/best.ifcbmodel").UploadAsync(Content);

        var uri = await BlobReadGrant.ForBlobAsync(container.GetBlobClient("jobs/a/best.ifcbmodel"), DateTimeOffset.UtcNow.AddHours(1));
        var granted = new BlobClient(uri);

        Assert.Equal(Content.ToString(), (await granted.DownloadContentAsync()).Value.Content.ToString());
        Assert.Equal(403, (await Assert.ThrowsAsync<RequestFailedException>(() => granted.UploadAsync(Content, overwrite: true))).Status);
        Assert.Equal(403, (await Assert.ThrowsAsync<RequestFailedException>(() => granted.DeleteAsync())).Status);
        // The same signature on another blob of the container is refused.
        var other = new BlobUriBuilder(uri) { BlobName = "jobs/b/best.ifcbmodel" }.ToUri();
        Assert.Equal(403, (await Assert.ThrowsAsync<RequestFailedException>(() => new BlobClient(other).DownloadContentAsync())).Status);
    }

    [Fact]
    public async Task A_container_grant_lists_and_reads_but_cannot_write()
    {
        var container = await fixture.Azurite.CreateContainerAsync("grant");
        await container.GetBlobClient("ds/v1/manifest.json").UploadAsync(Content);

        var granted = new BlobContainerClient(await BlobReadGrant.ForContainerAsync(container, DateTimeOffset.UtcNow.AddHours(1)));

        var names = new List<string>();
        await foreach (var item in granted.GetBlobsAsync())
            names.Add(item.Name);
        Assert.Equal(["ds/v1/manifest.json"], names);
        Assert.Equal(Content.ToString(), (await granted.GetBlobClient("ds/v1/manifest.json").DownloadContentAsync()).Value.Content.ToString());
        Assert.Equal(403, (await Assert.ThrowsAsync<RequestFailedException>(
            () => granted.GetBlobClient("ds/v1/new.png").UploadAsync(Content))).Status);
    }

    [Fact]
    public async Task A_lapsed_grant_is_refused()
    {
        var container = await fixture.Azurite.CreateContainerAsync("grant");
        await container.GetBlobClient("x").UploadAsync(Content);

        var lapsed = new BlobClient(await BlobReadGrant.ForBlobAsync(container.GetBlobClient("x"), DateTimeOffset.UtcNow.AddMinutes(-1)));

        Assert.Equal(403, (await Assert.ThrowsAsync<RequestFailedException>(() => lapsed.DownloadContentAsync())).Status);
    }
}
