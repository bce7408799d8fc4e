namespace Ifcb.Cli.Tests;

/// <summary><c>ifcb models webhooks add</c>: what is sent, and the secret is required but never printed back.</summary>
public sealed class ModelsWebhooksCliTests : IAsyncLifetime
{
    private FakePlatform _platform = null!;

    public async Task InitializeAsync() => _platform = await FakePlatform.StartAsync();

    public async Task DisposeAsync() => await _platform.DisposeAsync();

    [Fact]
    public async Task Add_sends_the_url_model_events_and_secret_and_does_not_print_the_secret()
    {
        var result = await CliRunner.RunAsync("models", "webhooks", "add", "https://ci.example/hooks/ifcb", "--model", "plankton",
            "--events", "version.registered, tag.set", "--secret", "a-long-enough-secret", "--server", _platform.Url, "--api-key", "k");

        Assert.True(result.ExitCode == ExitCodes.Success, result.Error);
        var request = Assert.Single(_platform.WebhookCreations);
        Assert.Equal(("https://ci.example/hooks/ifcb", "plankton", "a-long-enough-secret"), (request.Url, request.Model, request.Secret));
        Assert.Equal(["version.registered", "tag.set"], request.Events);
        Assert.Contains("webhook 0123456789abcdef", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("a-long-enough-secret", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Add_without_a_secret_is_a_usage_error()
    {
        var result = await CliRunner.RunAsync("models", "webhooks", "add", "https://ci.example/hooks/ifcb", "--server", _platform.Url);

        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains("--secret", result.Error, StringComparison.Ordinal);
        Assert.Empty(_platform.WebhookCreations);
    }
}
