using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Azure.Storage.Blobs;
using Ifcb.Models.Weights;

namespace Ifcb.Models.Tests;

/// <summary>The Azure Blob weights store against Azurite (node_modules/.bin/azurite-blob, pinned in package.json).</summary>
public sealed class BlobWeightsStoreTests : IAsyncLifetime
{
    private readonly TemporaryDirectory _data = new();
    private Process? _azurite;
    private BlobServiceClient _service = null!;

    public async Task InitializeAsync()
    {
        var root = RepositoryRoot();
        var port = FreePort();
        var start = new ProcessStartInfo(Path.Combine(root, "node_modules", ".bin", "azurite-blob"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in new[] { "--blobHost", "127.0.0.1", "--blobPort", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--location", _data.Path, "--skipApiVersionCheck", "--loose", "--silent" })
            start.ArgumentList.Add(argument);
        _azurite = Process.Start(start) ?? throw new InvalidOperationException("could not start azurite-blob");
        _service = new BlobServiceClient(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;" +
            "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;" +
            $"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;");
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await _service.GetPropertiesAsync();
                return;
            }
            catch (Exception) when (attempt < 100)
            {
                await Task.Delay(200);
            }
        }
    }

    public Task DisposeAsync()
    {
        if (_azurite is { HasExited: false })
            _azurite.Kill(entireProcessTree: true);
        _azurite?.Dispose();
        _data.Dispose();
        return Task.CompletedTask;
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

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Ifcb.sln")) || Directory.Exists(Path.Combine(directory.FullName, "node_modules")))
                return directory.FullName;
        }
        throw new InvalidOperationException($"no repository root above {AppContext.BaseDirectory}");
    }
}
