using Azure.Storage.Blobs;
using Ifcb.Models.Weights;
using Ifcb.Testing;

namespace Ifcb.Models.Tests;

/// <summary>The Azure Blob weights store against a private Azurite (the shared <see cref="AzuriteInstance"/>).</summary>
public sealed class BlobWeightsStoreTests : IAsyncLifetime
{
    private AzuriteInstance? _azurite;
    private BlobServiceClient _service = null!;

    public async Task InitializeAsync()
    {
        _azurite = await AzuriteInstance.StartAsync();
        _service = _azurite.BlobServiceClient;
    }

    public async Task DisposeAsync()
    {
        if (_azurite is not null)
            await _azurite.DisposeAsync();
    }

    [Fact]
    public async Task Blobs_live_under_weights_slash_in_container_weights()
    {
        var store = new BlobWeightsStore(_service);
        Assert.Null(await store.OpenReadAsync("resnet18.pth"));

        await store.WriteAsync("resnet18.pth", new MemoryStream([4, 5, 6]));
        var blob = _service.GetBlobContainerClient("weights").GetBlobClient("weights/resnet18.pth");
        Assert.True((await blob.ExistsAsync()).Value);
        await using var stream = await store.OpenReadAsync("resnet18.pth");
        using var copy = new MemoryStream();
        await stream!.CopyToAsync(copy);
        Assert.Equal(new byte[] { 4, 5, 6 }, copy.ToArray());

        var error = await Assert.ThrowsAsync<WeightsNotFoundException>(() => PretrainedWeights.CreateAsync(store, "alexnet", 3));
        Assert.Contains("weights/alexnet.pth", error.Message, StringComparison.Ordinal);
        Assert.Contains("container 'weights'", error.Message, StringComparison.Ordinal);
    }
}
