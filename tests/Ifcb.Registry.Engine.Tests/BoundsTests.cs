using System.Collections.Immutable;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine.Tests;

/// <summary>
/// Every number and list the registry accepts has the platform's bound (<see cref="Limits"/>): a request past one is
/// InvalidArgument naming the limit, and state that grows by requests (tags, aliases) stops at ResourceExhausted.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class BoundsTests(AzuriteFixture azurite)
{
    private const string Actor = "tests";

    private static readonly NewModelVersion Valid = TestCheckpoint.Create(16).Request();

    private static ImmutableSortedDictionary<string, T> Many<T>(int count, T value) =>
        Enumerable.Range(0, count).ToImmutableSortedDictionary(i => $"k{i:D4}", _ => value, StringComparer.Ordinal);

    private static void AssertRefused(NewModelVersion request, params string[] mentioned)
    {
        var error = Assert.Throws<IfcbException>(() => RegistryValidation.NewVersion(request, 1 << 20));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.All(mentioned, part => Assert.Contains(part, error.Message, StringComparison.Ordinal));
    }

    [Fact]
    public void Class_count_is_bounded_by_the_platform_limit()
    {
        RegistryValidation.NewVersion(Valid with { Classes = [.. Enumerable.Range(0, Limits.MaxClasses).Select(i => $"c{i}")] }, 1 << 20);
        AssertRefused(Valid with { Classes = [.. Enumerable.Range(0, Limits.MaxClasses + 1).Select(i => $"c{i}")] },
            nameof(Limits.MaxClasses), "10001");
    }

    [Fact]
    public void Class_names_are_bounded_like_the_checkpoint_reader_bounds_them()
    {
        RegistryValidation.NewVersion(Valid with { Classes = [new string('c', Limits.MaxClassNameLength)] }, 1 << 20);
        AssertRefused(Valid with { Classes = [new string('c', Limits.MaxClassNameLength + 1)] }, "Class name", $"{Limits.MaxClassNameLength}");
    }

    [Theory]
    [InlineData(Limits.MinResize - 1)]
    [InlineData(Limits.MaxResize + 1)]
    [InlineData(int.MaxValue)]
    public void Resize_is_bounded_by_the_platform_limits(int resize)
    {
        RegistryValidation.NewVersion(Valid with { Resize = Limits.MinResize }, 1 << 20);
        RegistryValidation.NewVersion(Valid with { Resize = Limits.MaxResize }, 1 << 20);
        AssertRefused(Valid with { Resize = resize }, "resize", nameof(Limits.MaxResize));
    }

    [Fact]
    public void Tags_and_metrics_of_a_registration_are_bounded()
    {
        RegistryValidation.NewVersion(Valid with { Tags = Many(Limits.MaxListItems, "v"), Metrics = Many(Limits.MaxListItems, 1.0) }, 1 << 20);
        AssertRefused(Valid with { Tags = Many(Limits.MaxListItems + 1, "v") }, "tags", nameof(Limits.MaxListItems));
        AssertRefused(Valid with { Metrics = Many(Limits.MaxListItems + 1, 1.0) }, "metrics", nameof(Limits.MaxListItems));
    }

    [Fact]
    public void Search_filters_are_bounded()
    {
        var conditions = Enumerable.Range(0, Limits.MaxListItems + 1).Select(i => MetricThreshold.Parse($"m{i}>0")).ToImmutableArray();
        var error = Assert.Throws<IfcbException>(() => RegistryValidation.Filter(new VersionFilter { Metrics = conditions }));
        Assert.Contains(nameof(Limits.MaxListItems), error.Message, StringComparison.Ordinal);
        error = Assert.Throws<IfcbException>(() => RegistryValidation.Filter(new VersionFilter { Tags = Many(Limits.MaxListItems + 1, "v") }));
        Assert.Contains(nameof(Limits.MaxListItems), error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(RegistryValidation.MaxPageSize + 1)]
    public async Task Page_sizes_are_bounded(int pageSize)
    {
        var (registry, _) = await azurite.NewRegistryAsync();
        Assert.Equal(ErrorKind.InvalidArgument, (await Assert.ThrowsAsync<IfcbException>(() => registry.ListModelsAsync(pageSize))).Kind);
        Assert.Equal(ErrorKind.InvalidArgument,
            (await Assert.ThrowsAsync<IfcbException>(() => registry.SearchVersionsAsync(new VersionFilter(), pageSize))).Kind);
        Assert.Equal(ErrorKind.InvalidArgument,
            (await Assert.ThrowsAsync<IfcbException>(() => registry.GetAuditHistoryAsync("any", pageSize))).Kind);
    }

    [Fact]
    public async Task A_model_or_version_stops_taking_new_tags_at_the_limit()
    {
        var (registry, _) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync("tagged", Actor, tags: Many(Limits.MaxListItems, "v"));
        var checkpoint = TestCheckpoint.Create();
        await registry.RegisterVersionAsync("tagged", checkpoint.Request(tags: Many(Limits.MaxListItems, "v")), checkpoint.Stream(), Actor);

        var modelFull = await Assert.ThrowsAsync<IfcbException>(() => registry.SetModelTagAsync("tagged", "one-more", "v", Actor));
        var versionFull = await Assert.ThrowsAsync<IfcbException>(() => registry.SetVersionTagAsync("tagged", 1, "one-more", "v", Actor));

        Assert.All(new[] { modelFull, versionFull }, e =>
        {
            Assert.Equal(ErrorKind.ResourceExhausted, e.Kind);
            Assert.Contains(nameof(Limits.MaxListItems), e.Message, StringComparison.Ordinal);
        });
        // Changing an existing tag is still fine.
        Assert.Equal("w", (await registry.SetModelTagAsync("tagged", "k0000", "w", Actor)).Tags["k0000"]);
        Assert.Equal("w", (await registry.SetVersionTagAsync("tagged", 1, "k0000", "w", Actor)).Tags["k0000"]);
    }

    [Fact]
    public async Task A_model_stops_taking_new_aliases_at_the_limit()
    {
        var (registry, _) = await azurite.NewRegistryAsync(new RegistryOptions { MaxAliasesPerModel = 2 });
        await registry.CreateModelAsync("aliased", Actor);
        var checkpoint = TestCheckpoint.Create();
        await registry.RegisterVersionAsync("aliased", checkpoint.Request(), checkpoint.Stream(), Actor);
        await registry.SetAliasAsync("aliased", "production", 1, Actor);
        await registry.SetAliasAsync("aliased", "staging", 1, Actor);

        var full = await Assert.ThrowsAsync<IfcbException>(() => registry.SetAliasAsync("aliased", "canary", 1, Actor));

        Assert.Equal(ErrorKind.ResourceExhausted, full.Kind);
        Assert.Contains("2 aliases", full.Message, StringComparison.Ordinal);
        Assert.Equal(2, (await registry.GetModelAsync("aliased")).Aliases.Count);
    }
}
