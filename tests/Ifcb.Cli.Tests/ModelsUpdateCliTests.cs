namespace Ifcb.Cli.Tests;

/// <summary><c>ifcb models update</c>: only the fields given are sent (absent ones stay unset), and a bad reference is a usage error.</summary>
public sealed class ModelsUpdateCliTests : IAsyncLifetime
{
    private FakePlatform _platform = null!;

    public async Task InitializeAsync() => _platform = await FakePlatform.StartAsync();

    public async Task DisposeAsync() => await _platform.DisposeAsync();

    [Fact]
    public async Task Sends_only_the_fields_given()
    {
        var result = await CliRunner.RunAsync("models", "update", "plankton/7", "--description", "", "--metric", "f1_weighted=0.85",
            "--remove-metric", "val_loss", "--server", _platform.Url, "--api-key", "k");

        Assert.True(result.ExitCode == ExitCodes.Success, result.Error);
        var request = Assert.Single(_platform.Updates);
        Assert.Equal(("plankton", 7), (request.Name, request.Version));
        Assert.True(request.HasDescription);
        Assert.Equal("", request.Description);
        Assert.Equal(0.85, request.SetMetrics["f1_weighted"]);
        Assert.Equal(["val_loss"], request.RemoveMetrics);
        Assert.False(request.HasSourceCommit);
        Assert.False(request.HasSourcePipelineUrl);
    }

    [Theory]
    [InlineData("plankton", "names no version number")]
    [InlineData("plankton/7", "the value must be a number", "--metric", "f1=high")]
    public async Task A_reference_without_a_version_or_a_bad_metric_is_a_usage_error(string reference, string message, params string[] more)
    {
        var result = await CliRunner.RunAsync(["models", "update", reference, "--description", "x", .. more, "--server", _platform.Url]);

        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains(message, result.Error, StringComparison.Ordinal);
        Assert.Empty(_platform.Updates);
    }
}
