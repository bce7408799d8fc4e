using System.Globalization;

/// <summary>
/// Peak resident memory (VmHWM in /proc/PID/status) of this platform's service processes and of this process, sampled
/// every second while it runs (a process that exits keeps the last peak read). Service processes are found by their
/// command line (Ifcb.Training, Ifcb.NormStats, Ifcb.Registry; not their `dotnet run` launchers) and the platform's run
/// tag in their environment.
/// </summary>
internal sealed class PeakRss : IAsyncDisposable
{
    private static readonly string[] ServiceNames = ["Ifcb.Training", "Ifcb.NormStats", "Ifcb.Registry"];
    private readonly string _runMarker;
    private readonly Dictionary<int, (string Name, string CommandLine, long Bytes)> _peaks = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _sampling;

    private PeakRss(string runTag)
    {
        _runMarker = $"{BenchPlatform.RunVariable}={runTag}";
        _sampling = Task.Run(SampleAsync);
    }

    /// <summary>Starts sampling; first resets this process's peak (clear_refs 5) so earlier sections do not count.</summary>
    public static PeakRss Start(string runTag)
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"could not reset this process's peak RSS ({e.Message}); it includes earlier sections");
        }
        return new PeakRss(runTag);
    }

    /// <summary>Stops sampling and returns each process's peak, services first, then this process ("bench (CLI's part)").</summary>
    public async Task<IReadOnlyList<(string Process, string CommandLine, long Bytes)>> StopAsync()
    {
        await _stop.CancelAsync();
        await _sampling;
        Sample();
        lock (_peaks)
            return [.. _peaks.OrderBy(p => p.Value.Name, StringComparer.Ordinal).ThenBy(p => p.Key)
                .Select(p => ($"{p.Value.Name} (pid {p.Key})", p.Value.CommandLine, p.Value.Bytes))];
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _sampling;
        _stop.Dispose();
    }

    private async Task SampleAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            do
                Sample();
            while (await timer.WaitForNextTickAsync(_stop.Token));
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void Sample()
    {
        Record(Environment.ProcessId, "bench (CLI's part)", Environment.CommandLine);
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == Environment.ProcessId)
                continue;
            try
            {
                var commandLine = File.ReadAllText(Path.Combine(dir, "cmdline"));
                var name = ServiceNames.FirstOrDefault(n => commandLine.Contains(n, StringComparison.Ordinal));
                // Aspire starts each service through `dotnet run --project X.csproj --no-build`, whose process stays as the
                // service's parent: that launcher is not the service (nor part of a deployment), so it does not count.
                if (name is null || commandLine.Split('\0') is [_, "run", ..]
                    || !File.ReadAllText(Path.Combine(dir, "environ")).Split('\0').Contains(_runMarker))
                    continue;
                Record(pid, name, commandLine.Replace('\0', ' ').Trim());
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The process exited, or is another user's.
            }
        }
    }

    private void Record(int pid, string name, string commandLine)
    {
        long? bytes = null;
        try
        {
            bytes = File.ReadLines($"/proc/{pid}/status").Where(l => l.StartsWith("VmHWM:", StringComparison.Ordinal))
                .Select(l => long.Parse(l["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024)
                .FirstOrDefault();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        if (bytes is not > 0)
            return;
        lock (_peaks)
            if (!_peaks.TryGetValue(pid, out var peak) || peak.Bytes < bytes)
                _peaks[pid] = (name, commandLine, bytes.Value);
    }
}
