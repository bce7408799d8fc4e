using Azure;
using Azure.Storage.Blobs;

namespace Ifcb.Models.Weights;

/// <summary>Weights in Azure Blob Storage: container <c>weights</c>, blobs <c>weights/{file}</c>.</summary>
public sealed class BlobWeightsStore : IWeightsStore
{
    public const string ContainerName = "weights";
    public const string BlobPrefix = "weights/";

    private readonly BlobContainerClient _container;

    public BlobWeightsStore(BlobServiceClient service)
    {
        ArgumentNullException.ThrowIfNull(service);
        _container = service.GetBlobContainerClient(ContainerName);
    }

    public static string BlobName(string fileName) => BlobPrefix + fileName;

    public string Describe(string fileName) => $"blob '{BlobName(fileName)}' in container '{ContainerName}' ({_container.Uri})";

    public async Task<Stream?> OpenReadAsync(string fileName, CancellationToken cancellationToken = default)
    {
        var blob = _container.GetBlobClient(BlobName(fileName));
        try
        {
            // State-dict readers seek, and a download stream cannot; torchvision's largest file (vgg19_bn) is ~550 MB.
            var memory = new MemoryStream();
            await blob.DownloadToAsync(memory, cancellationToken);
            memory.Position = 0;
            return memory;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    public async Task WriteAsync(string fileName, Stream content, CancellationToken cancellationToken = default)
    {
        await _container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
        await _container.GetBlobClient(BlobName(fileName)).UploadAsync(content, overwrite: true, cancellationToken);
    }
}
