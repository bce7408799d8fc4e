using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Azure.Storage.Blobs;

namespace Ifcb.Data.Tests;

/// <summary>A private Azurite blob emulator on a free loopback port, killed and deleted on dispose.</summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    private const string DevKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    private Process? _process;
    private string? _location;

    public string ConnectionString { get; private set; } = "";

    public BlobContainerClient NewContainer() =>
        new BlobServiceClient(ConnectionString).GetBlobContainerClient("c" + Guid.NewGuid().ToString("N")[..20]);

    // On a loaded 2-core machine a start can be slow, or lose its port to another process between probe and bind:
    // start again on a fresh port, and say what Azurite printed if it never comes up.
    public async Task InitializeAsync()
    {
        var azurite = FindAzurite();
        _location = Path.Combine(Path.GetTempPath(), "azurite-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_location);
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        for (var attempt = 1; ; attempt++)
        {
            int port;
            using (var listener = new TcpListener(IPAddress.Loopback, 0))
            {
                listener.Start();
                port = ((IPEndPoint)listener.LocalEndpoint).Port;
            }
            var start = new ProcessStartInfo(azurite) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "--blobHost", "127.0.0.1", "--blobPort", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                                      "--location", _location, "--skipApiVersionCheck", "--loose", "--silent" })
                start.ArgumentList.Add(a);
            _process = Process.Start(start)!;
            _process.OutputDataReceived += (_, e) => { if (e.Data is not null) output.Enqueue(e.Data); };
            _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) output.Enqueue(e.Data); };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
            ConnectionString = $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DevKey};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;";
            var deadline = DateTime.UtcNow.AddSeconds(45);
            while (DateTime.UtcNow < deadline && !_process.HasExited)
            {
                try
                {
                    using var client = new TcpClient();
                    await client.ConnectAsync(IPAddress.Loopback, port);
                    return;
                }
                catch (SocketException)
                {
                    await Task.Delay(100);
                }
            }
            StopProcess();
            if (attempt == 3)
                throw new InvalidOperationException($"Azurite did not start in 3 attempts. Its output:\n{string.Join('\n', output)}");
        }
    }

    public Task DisposeAsync()
    {
        StopProcess();
        if (_location is not null && Directory.Exists(_location))
            Directory.Delete(_location, true);
        return Task.CompletedTask;
    }

    private void StopProcess()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }
        _process?.Dispose();
        _process = null;
    }

    private static string FindAzurite()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "node_modules", ".bin", "azurite-blob");
            if (File.Exists(candidate))
                return candidate;
        }
        throw new FileNotFoundException("node_modules/.bin/azurite-blob not found above the test binaries; run `npm ci` in the repository root.");
    }
}
