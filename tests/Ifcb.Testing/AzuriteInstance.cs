using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Azure.Storage.Blobs;

namespace Ifcb.Testing;

/// <summary>
/// A private Azurite blob emulator for one test class or collection: its own loopback port and its own temporary
/// storage folder, so test classes never see each other's blobs. Start with <see cref="StartAsync"/>; dispose to stop
/// the process tree and delete the storage folder.
/// </summary>
public sealed class AzuriteInstance : IAsyncDisposable
{
    // Azurite's fixed development account; the key is public and documented by Microsoft.
    public const string AccountName = "devstoreaccount1";
    public const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private static readonly TimeSpan StartupTimeout = TimeSpan.FromSeconds(30);

    private readonly Process _process;
    private readonly string _storageDirectory;
    private readonly List<string> _output = [];

    private AzuriteInstance(Process process, string storageDirectory, int port)
    {
        _process = process;
        _storageDirectory = storageDirectory;
        Port = port;
        ConnectionString =
            $"DefaultEndpointsProtocol=http;AccountName={AccountName};AccountKey={AccountKey};" +
            $"BlobEndpoint=http://127.0.0.1:{port}/{AccountName};";
        BlobServiceClient = new BlobServiceClient(ConnectionString);
    }

    public int Port { get; }

    /// <summary>Connection string for the dev account; uses 127.0.0.1 because "localhost" may resolve to ::1 first.</summary>
    public string ConnectionString { get; }

    public BlobServiceClient BlobServiceClient { get; }

    /// <summary>Creates a container with a unique name, so tests sharing one Azurite stay independent.</summary>
    public async Task<BlobContainerClient> CreateContainerAsync(string prefix = "test", CancellationToken cancellationToken = default)
    {
        var container = BlobServiceClient.GetBlobContainerClient($"{prefix}-{Guid.NewGuid():N}");
        await container.CreateAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        return container;
    }

    public static async Task<AzuriteInstance> StartAsync(CancellationToken cancellationToken = default)
    {
        var executable = Path.Combine(RepoPaths.Root, "node_modules", ".bin", "azurite-blob");
        if (!File.Exists(executable))
        {
            throw new FileNotFoundException(
                $"Azurite is not installed at {executable}; run `npm ci` in the repo root ({RepoPaths.Root}).", executable);
        }

        var storageDirectory = Directory.CreateTempSubdirectory("ifcb-azurite-").FullName;
        var port = FindFreeLoopbackPort();
        var startInfo = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[]
                 {
                     "--blobHost", "127.0.0.1", "--blobPort", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--location", storageDirectory, "--skipApiVersionCheck", "--loose", "--silent",
                 })
        {
            startInfo.ArgumentList.Add(argument);
        }

        var process = Process.Start(startInfo)
            ?? throw new InvalidOperationException($"Could not start {executable}.");
        var instance = new AzuriteInstance(process, storageDirectory, port);
        process.OutputDataReceived += (_, e) => instance.Remember(e.Data);
        process.ErrorDataReceived += (_, e) => instance.Remember(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        try
        {
            await instance.WaitUntilReadyAsync(cancellationToken).ConfigureAwait(false);
            return instance;
        }
        catch
        {
            await instance.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private void Remember(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.Add(line);
        }
    }

    private async Task WaitUntilReadyAsync(CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var probe = new Uri($"http://127.0.0.1:{Port}/{AccountName}?comp=list");
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < StartupTimeout)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException(
                    $"Azurite exited with code {_process.ExitCode} before it was ready. Output:\n{CapturedOutput()}");
            }

            try
            {
                // Any HTTP answer (403 for the unsigned request included) means the server is listening.
                using var response = await http.GetAsync(probe, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }

        throw new TimeoutException(
            $"Azurite did not answer on port {Port} within {StartupTimeout.TotalSeconds} s. Output:\n{CapturedOutput()}");
    }

    private string CapturedOutput()
    {
        lock (_output)
        {
            return string.Join('\n', _output);
        }
    }

    private static int FindFreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                // The .bin entry is a node script; kill the whole tree so no node process keeps the port.
                _process.Kill(entireProcessTree: true);
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
        finally
        {
            _process.Dispose();
            try
            {
                Directory.Delete(_storageDirectory, recursive: true);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }
}
