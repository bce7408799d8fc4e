using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Azure.Storage.Blobs;

namespace Ifcb.Testing;

/// <summary>
/// The one Azurite launcher of the tests: a private blob emulator (node_modules/.bin/azurite-blob, pinned in
/// package.json) on its own free loopback port with its own temporary storage folder, so test classes never see each
/// other's blobs. Start with <see cref="StartAsync"/> (it returns once the server answers HTTP); dispose to stop the
/// process tree and delete the storage folder. Every instance still running when the test process exits is killed
/// then as well, so no Azurite outlives a test run. Test projects wrap it in their own small xunit fixture (xunit
/// fixtures are per assembly).
/// </summary>
public sealed class AzuriteInstance : IAsyncDisposable
{
    // Azurite's fixed development account; the key is public and documented by Microsoft.
    public const string AccountName = "devstoreaccount1";
    public const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    // On a loaded 2-core machine a start can be slow, or lose its port to another process between probe and bind:
    // each attempt gets this long, then Azurite starts again on a fresh port.
    private static readonly TimeSpan StartupTimeout = TimeSpan.FromSeconds(45);
    private const int StartAttempts = 3;

    private static readonly HashSet<AzuriteInstance> Running = [];

    private readonly Process _process;
    private readonly string _storageDirectory;
    private readonly List<string> _output = [];
    private int _disposed;

    static AzuriteInstance() => AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAllRunning();

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
        var container = NewContainer(prefix);
        await container.CreateAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        return container;
    }

    /// <summary>A client for a container with a unique name that does not exist yet (for code that creates its own).</summary>
    public BlobContainerClient NewContainer(string prefix = "test") =>
        BlobServiceClient.GetBlobContainerClient($"{prefix}-{Guid.NewGuid():N}");

    public static async Task<AzuriteInstance> StartAsync(CancellationToken cancellationToken = default)
    {
        var executable = Path.Combine(RepoPaths.Root, "node_modules", ".bin", "azurite-blob");
        if (!File.Exists(executable))
        {
            throw new FileNotFoundException(
                $"Azurite is not installed at {executable}; run `npm ci` in the repo root ({RepoPaths.Root}).", executable);
        }

        for (var attempt = 1; ; attempt++)
        {
            var instance = Launch(executable);
            try
            {
                await instance.WaitUntilReadyAsync(cancellationToken).ConfigureAwait(false);
                return instance;
            }
            catch (Exception) when (attempt < StartAttempts && !cancellationToken.IsCancellationRequested)
            {
                await instance.DisposeAsync().ConfigureAwait(false);
            }
            catch
            {
                await instance.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }
    }

    private static AzuriteInstance Launch(string executable)
    {
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

        Process process;
        try
        {
            process = Process.Start(startInfo) ?? throw new InvalidOperationException($"Could not start {executable}.");
        }
        catch
        {
            DeleteDirectory(storageDirectory);
            throw;
        }

        var instance = new AzuriteInstance(process, storageDirectory, port);
        lock (Running)
        {
            Running.Add(instance);
        }

        process.OutputDataReceived += (_, e) => instance.Remember(e.Data);
        process.ErrorDataReceived += (_, e) => instance.Remember(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return instance;
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
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            if (KillProcessTree())
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // Killed but not yet reaped after 10 s; the kill signal has been sent, nothing more to do.
        }
        finally
        {
            lock (Running)
            {
                Running.Remove(this);
            }

            _process.Dispose();
            DeleteDirectory(_storageDirectory);
        }
    }

    /// <summary>Kills the process and its children (the .bin entry is a node script); false when it had already exited.</summary>
    private bool KillProcessTree()
    {
        try
        {
            if (_process.HasExited)
            {
                return false;
            }

            _process.Kill(entireProcessTree: true);
            return true;
        }
        catch (InvalidOperationException)
        {
            return false; // Already gone.
        }
    }

    // A test process that ends without disposing its fixtures (an aborted run, a crashed collection) still takes its
    // Azurite processes with it.
    private static void KillAllRunning()
    {
        AzuriteInstance[] running;
        lock (Running)
        {
            running = [.. Running];
        }

        foreach (var instance in running)
        {
            try
            {
                if (instance.KillProcessTree())
                {
                    instance._process.WaitForExit(5000);
                }
            }
            catch (InvalidOperationException)
            {
                // Disposed meanwhile by its own DisposeAsync, which stops it.
            }

            DeleteDirectory(instance._storageDirectory);
        }
    }

    private static void DeleteDirectory(string path)
    {
        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
