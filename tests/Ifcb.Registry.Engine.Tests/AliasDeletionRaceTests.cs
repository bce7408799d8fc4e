using Ifcb.Contracts;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine.Tests;

/// <summary>
/// SetAlias and DeleteVersion racing on one version, driven step by step: each test holds one registry's storage
/// request at an exact point, runs the other operation to the end, then lets the first go on (or crashes it there).
/// Whatever the interleaving, no alias may ever point at a version that is missing.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class AliasDeletionRaceTests(AzuriteFixture azurite)
{
    private const string Actor = "tests";

    private async Task<(ModelRegistry Registry, FaultyStorage Storage, ModelRegistry Faulty)> OneReadyVersionAsync(string model)
    {
        var (registry, container) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync(model, Actor);
        var checkpoint = TestCheckpoint.Create();
        await registry.RegisterVersionAsync(model, checkpoint.Request("key-1"), checkpoint.Stream(), Actor);
        var storage = FaultyStorage.Over(azurite, container);
        return (registry, storage, new ModelRegistry(storage.Container));
    }

    private static async Task AssertEveryAliasResolvesAsync(ModelRegistry registry, string model)
    {
        foreach (var (alias, version) in (await registry.GetModelAsync(model)).Aliases)
        {
            var target = await registry.GetVersionAsync(ModelRef.ToVersion(model, version));
            Assert.True(target.Status == ModelVersionStatus.Ready, $"@{alias} points at version {version}, which is {target.Status}");
        }
    }

    private static bool IsModelDocumentPut(string method, string path, string model) =>
        method == "PUT" && path.EndsWith($"/models/{model}/model.json", StringComparison.Ordinal);

    [Fact]
    public async Task SetAlias_that_read_the_version_before_a_complete_delete_does_not_write_the_alias()
    {
        var (registry, storage, setter) = await OneReadyVersionAsync("late-alias");
        var pause = storage.PauseAt((method, path) => IsModelDocumentPut(method, path, "late-alias"));
        var setting = setter.SetAliasAsync("late-alias", "production", 1, "setter");
        await pause.Reached.Task.WaitAsync(TimeSpan.FromSeconds(30));

        await registry.DeleteVersionAsync("late-alias", 1, "deleter");
        pause.Release();

        var refused = await Assert.ThrowsAsync<IfcbException>(() => setting);
        Assert.Equal(ErrorKind.NotFound, refused.Kind);
        Assert.Empty((await registry.GetModelAsync("late-alias")).Aliases);
        await AssertEveryAliasResolvesAsync(registry, "late-alias");
    }

    [Fact]
    public async Task SetAlias_during_a_delete_in_progress_is_refused()
    {
        var (registry, storage, deleter) = await OneReadyVersionAsync("mid-delete");
        // The delete has updated model.json and is about to remove the first blob of the version.
        var pause = storage.PauseAt((method, path) => method == "DELETE" && path.Contains("/models/mid-delete/versions/", StringComparison.Ordinal));
        var deleting = deleter.DeleteVersionAsync("mid-delete", 1, "deleter");
        await pause.Reached.Task.WaitAsync(TimeSpan.FromSeconds(30));

        var refused = await Assert.ThrowsAsync<IfcbException>(() => registry.SetAliasAsync("mid-delete", "production", 1, "setter"));
        Assert.Equal(ErrorKind.NotFound, refused.Kind);
        Assert.Contains("being deleted", refused.Message, StringComparison.Ordinal);
        pause.Release();
        await deleting;

        Assert.Empty((await registry.GetModelAsync("mid-delete")).Aliases);
        Assert.Empty((await registry.GetModelAsync("mid-delete")).DeletingVersions);
        await AssertEveryAliasResolvesAsync(registry, "mid-delete");
    }

    [Fact]
    public async Task A_delete_interrupted_before_removing_the_document_is_completed_by_deleting_again()
    {
        var (registry, storage, deleter) = await OneReadyVersionAsync("half-deleted");
        storage.PauseAt((method, path) => method == "DELETE" && path.EndsWith("/0000001/version.json", StringComparison.Ordinal)).CrashHere();

        await Assert.ThrowsAnyAsync<Exception>(() => deleter.DeleteVersionAsync("half-deleted", 1, "deleter"));

        Assert.Equal([1], (await registry.GetModelAsync("half-deleted")).DeletingVersions);
        var refused = await Assert.ThrowsAsync<IfcbException>(() => registry.SetAliasAsync("half-deleted", "production", 1, Actor));
        Assert.Equal(ErrorKind.NotFound, refused.Kind);

        var deleted = await registry.DeleteVersionAsync("half-deleted", 1, Actor);
        Assert.Equal(1, deleted.Version);
        Assert.Equal(ErrorKind.NotFound, (await Assert.ThrowsAsync<IfcbException>(() => registry.GetVersionAsync("half-deleted/1"))).Kind);
        Assert.Empty((await registry.GetModelAsync("half-deleted")).DeletingVersions);
        await AssertEveryAliasResolvesAsync(registry, "half-deleted");
    }

    [Fact]
    public async Task A_delete_interrupted_after_removing_the_document_is_completed_by_deleting_again()
    {
        var (registry, storage, deleter) = await OneReadyVersionAsync("marker-left");
        var puts = 0;
        // The first model.json write marks the version; the second would clear the mark. Crash there.
        storage.PauseAt((method, path) => IsModelDocumentPut(method, path, "marker-left") && ++puts == 2).CrashHere();

        await Assert.ThrowsAnyAsync<Exception>(() => deleter.DeleteVersionAsync("marker-left", 1, "deleter"));

        Assert.Equal([1], (await registry.GetModelAsync("marker-left")).DeletingVersions);
        Assert.Equal(ErrorKind.NotFound, (await Assert.ThrowsAsync<IfcbException>(() => registry.SetAliasAsync("marker-left", "production", 1, Actor))).Kind);

        var again = await Assert.ThrowsAsync<IfcbException>(() => registry.DeleteVersionAsync("marker-left", 1, Actor));
        Assert.Equal(ErrorKind.NotFound, again.Kind);
        Assert.Contains("completed", again.Message, StringComparison.Ordinal);
        Assert.Empty((await registry.GetModelAsync("marker-left")).DeletingVersions);
        // The number stays used.
        var next = TestCheckpoint.Create();
        Assert.Equal(2, (await registry.RegisterVersionAsync("marker-left", next.Request(), next.Stream(), Actor)).Version.Version);
    }
}
