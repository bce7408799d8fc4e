using System.Text.Json;
using Grpc.Core;
using Ifcb.Protos;

namespace Ifcb.Cli.Tests;

/// <summary>
/// <c>ifcb models search</c>: the filter and ordering reach the Registry as typed, pages are followed up to --limit,
/// and a filter the Registry refuses exits 2 with its message (which points at the token).
/// </summary>
public sealed class ModelsSearchCliTests : IAsyncLifetime
{
    private FakePlatform _platform = null!;

    public async Task InitializeAsync() => _platform = await FakePlatform.StartAsync();

    public async Task DisposeAsync() => await _platform.DisposeAsync();

    [Fact]
    public async Task Sends_the_filter_and_ordering_and_follows_pages_up_to_the_limit()
    {
        for (var version = 1; version <= 5; version++)
            _platform.Versions[("plankton", version)] = new ModelVersion { Name = "plankton", Version = version, Status = VersionStatus.Ready };
        _platform.SearchPageLimit = 2;

        var result = await CliRunner.RunAsync("models", "search", "metrics.f1_weighted >= 0.8 AND name LIKE 'plank%'",
            "--order-by", "metrics.f1_weighted DESC, version ASC", "--limit", "3", "--json", "--server", _platform.Url);

        Assert.True(result.ExitCode == ExitCodes.Success, result.Error);
        var versions = JsonDocument.Parse(result.Output).RootElement.EnumerateArray().Select(v => v.GetProperty("version").GetInt32());
        Assert.Equal([1, 2, 3], versions);
        var searches = _platform.Searches.ToArray();
        Assert.Equal(2, searches.Length);
        Assert.All(searches, s => Assert.Equal(("metrics.f1_weighted >= 0.8 AND name LIKE 'plank%'", "metrics.f1_weighted DESC, version ASC"),
            (s.Filter, s.OrderBy)));
        Assert.Equal(("", 3), (searches[0].PageToken, searches[0].PageSize));
        Assert.Equal(("2", 1), (searches[1].PageToken, searches[1].PageSize));
    }

    [Fact]
    public async Task Searches_models_with_the_models_flag()
    {
        _platform.Versions[("plankton", 1)] = new ModelVersion { Name = "plankton", Version = 1 };

        var result = await CliRunner.RunAsync("models", "search", "tags.team = 'whoi'", "--models", "--json", "--server", _platform.Url);

        Assert.True(result.ExitCode == ExitCodes.Success, result.Error);
        var model = Assert.Single(JsonDocument.Parse(result.Output).RootElement.EnumerateArray());
        Assert.Equal("tags.team = 'whoi'", model.GetProperty("tags").GetProperty("filter").GetString());
    }

    [Fact]
    public async Task A_refused_filter_exits_2_with_the_registry_message()
    {
        const string Message = "Invalid filter at position 12, 'OR': OR is not supported; conditions may only be joined with AND.";
        _platform.On("Registry.SearchVersions", FakePlatform.AlwaysFail(StatusCode.InvalidArgument, Message));

        var result = await CliRunner.RunAsync("models", "search", "name = 'a' OR name = 'b'", "--server", _platform.Url);

        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains(Message, result.Error, StringComparison.Ordinal);
        Assert.Equal(1, _platform.Calls("Registry.SearchVersions"));
    }
}
