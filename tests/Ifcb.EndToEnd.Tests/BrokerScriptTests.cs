using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Ifcb.Testing;

namespace Ifcb.EndToEnd.Tests;

/// <summary>
/// The AppHost's broker launcher (Ifcb.AppHost/scripts/rabbitmq.sh) run directly, as the orchestrator runs it. A restart
/// starts the script again on the same ports while the previous instance may still be shutting down or was SIGKILLed
/// before its watchdog cleaned up; in CI that left the new epmd unable to bind, the old watchdog's clean-up then killed
/// the new broker, and the platform stayed without a broker.
/// </summary>
public sealed class BrokerScriptTests : IDisposable
{
    private static readonly string Script = Path.Combine(RepoPaths.Root, "Ifcb.AppHost", "scripts", "rabbitmq.sh");
    private readonly string _state = Directory.CreateTempSubdirectory("ifcb-broker-script-").FullName;
    private readonly int _amqp, _management, _epmd, _dist;
    private readonly List<Process> _scripts = [];

    public BrokerScriptTests()
    {
        // Four distinct free loopback ports: every listener stays open until all four are chosen.
        var listeners = Enumerable.Range(0, 4).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToList();
        listeners.ForEach(l => l.Start());
        var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        listeners.ForEach(l => l.Dispose());
        (_amqp, _management, _epmd, _dist) = (ports[0], ports[1], ports[2], ports[3]);
    }

    [Fact]
    public async Task A_restart_after_its_predecessor_was_SIGKILLed_takes_over_and_stays_up()
    {
        var first = Start();
        await WaitForManagementAsync(first);
        var firstBroker = Assert.Single(Brokers());

        first.Kill(); // SIGKILL to the script only: its broker, epmd and watchdog live on for a moment
        var second = Start();
        await WaitForManagementAsync(second, notBroker: firstBroker);

        // Longer than the killed script's watchdog takes to clean up: its clean-up must not reach the new broker.
        await Task.Delay(TimeSpan.FromSeconds(10));
        Assert.False(second.HasExited, "the restarted script exited");
        var secondBroker = Assert.Single(Brokers());
        Assert.NotEqual(firstBroker, secondBroker);
        await WaitForManagementAsync(second);

        // A clean stop takes the broker and epmd with it.
        Signal(second.Id, "TERM");
        Assert.True(await ExitsAsync(second, TimeSpan.FromSeconds(30)), "the script did not stop on SIGTERM");
        var deadline = Stopwatch.StartNew();
        while ((Brokers().Count > 0 || Epmds().Count > 0) && deadline.Elapsed < TimeSpan.FromSeconds(15))
            await Task.Delay(250);
        Assert.Empty(Brokers());
        Assert.Empty(Epmds());
    }

    private Process Start()
    {
        var info = new ProcessStartInfo("/bin/bash", [Script]) { RedirectStandardOutput = true, RedirectStandardError = true };
        info.Environment["RABBITMQ_NODE_PORT"] = Port(_amqp);
        info.Environment["RABBITMQ_MANAGEMENT_PORT"] = Port(_management);
        info.Environment["ERL_EPMD_PORT"] = Port(_epmd);
        info.Environment["RABBITMQ_DIST_PORT"] = Port(_dist);
        info.Environment["IFCB_STATE_DIR"] = _state;
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _scripts.Add(process);
        return process;
    }

    /// <summary>Waits until the management API answers, served by a broker other than <paramref name="notBroker"/>.</summary>
    private async Task WaitForManagementAsync(Process script, int? notBroker = null)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String("guest:guest"u8.ToArray()));
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromMinutes(2))
        {
            Assert.False(script.HasExited, $"the broker script exited with code {(script.HasExited ? script.ExitCode : 0)}");
            try
            {
                var answer = await http.GetAsync(new Uri($"http://127.0.0.1:{_management}/api/overview"));
                if (answer.IsSuccessStatusCode && (notBroker is null || !Brokers().Contains(notBroker.Value)))
                    return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }
            await Task.Delay(500);
        }
        Assert.Fail("the broker's management API did not answer within 2 minutes");
    }

    private List<int> Brokers() => Pgrep($"beam\\.smp.* -epmd_port {_epmd}( |$)");

    private List<int> Epmds() => Pgrep($"^epmd -port {_epmd} ");

    private static List<int> Pgrep(string pattern)
    {
        using var pgrep = Process.Start(new ProcessStartInfo("pgrep", ["-f", pattern]) { RedirectStandardOutput = true })!;
        var output = pgrep.StandardOutput.ReadToEnd();
        pgrep.WaitForExit();
        return [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(p => int.Parse(p, CultureInfo.InvariantCulture))];
    }

    private static void Signal(int pid, string signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", pid.ToString(CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
    }

    private static async Task<bool> ExitsAsync(Process process, TimeSpan within)
    {
        using var timeout = new CancellationTokenSource(within);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);

    public void Dispose()
    {
        foreach (var script in _scripts.Where(s => !s.HasExited))
            Signal(script.Id, "TERM");
        foreach (var script in _scripts)
        {
            script.WaitForExit(30_000);
            script.Dispose();
        }
        // Whatever a failed test left behind on these ports.
        foreach (var pid in Brokers().Concat(Epmds()))
            Signal(pid, "KILL");
        try
        {
            Directory.Delete(_state, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
