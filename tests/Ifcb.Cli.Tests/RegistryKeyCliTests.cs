using System.Collections.Concurrent;

namespace Ifcb.Cli.Tests;

/// <summary>
/// A registry may demand a key for reads (Ifcb:Registry:RequireKeyForReads), so every Registry call the CLI makes carries
/// IFCB_API_KEY; reads of the other services do not.
/// </summary>
public sealed class RegistryKeyCliTests : IAsyncLifetime
{
    private FakePlatform _platform = null!;

    public async Task InitializeAsync() => _platform = await FakePlatform.StartAsync();

    public async Task DisposeAsync() => await _platform.DisposeAsync();

    private static CallScript Record(ConcurrentQueue<string> keys) => (_, context) =>
    {
        keys.Enqueue(context.RequestHeaders.GetValue("x-api-key") ?? "(none)");
        return Task.CompletedTask;
    };

    [Fact]
    public async Task Registry_reads_carry_the_api_key_and_training_reads_do_not()
    {
        var registry = new ConcurrentQueue<string>();
        var training = new ConcurrentQueue<string>();
        _platform.On("Registry.SearchVersions", Record(registry));
        _platform.On("Training.ListJobs", Record(training));
        var environment = new Dictionary<string, string> { ["IFCB_API_KEY"] = "ifcb_dashboard_key" };

        var versions = await CliRunner.RunAsync(environment, "models", "versions", "--registry-url", _platform.Url);
        var jobs = await CliRunner.RunAsync(environment, "jobs", "list", "--server", _platform.Url);
        var anonymous = await CliRunner.RunAsync("models", "versions", "--registry-url", _platform.Url);

        Assert.True(versions.ExitCode == ExitCodes.Success, versions.Error);
        Assert.True(jobs.ExitCode == ExitCodes.Success, jobs.Error);
        Assert.True(anonymous.ExitCode == ExitCodes.Success, anonymous.Error);
        Assert.Equal(["ifcb_dashboard_key", "(none)"], registry);
        Assert.Equal(["(none)"], training);
    }

    [Fact]
    public async Task Keys_create_requires_a_known_role()
    {
        var result = await CliRunner.RunAsync("keys", "create", "ci-bot", "--role", "owner", "--registry-url", _platform.Url);

        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains("owner", result.Error, StringComparison.Ordinal);
    }
}
