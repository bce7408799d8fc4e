using Ifcb.Platform;

namespace Ifcb.Registry.Engine.Tests;

[Collection(AzuriteCollection.Name)]
public sealed class DeletionTests(AzuriteFixture azurite)
{
    private const string Actor = "tests";

    [Fact]
    public async Task Deleting_a_version_removes_its_blobs_and_never_reuses_its_number()
    {
        var (registry, container) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync("doomed", Actor);
        var checkpoint = TestCheckpoint.Create();
        await registry.RegisterVersionAsync("doomed", checkpoint.Request(), checkpoint.Stream(), Actor);
        await registry.RegisterVersionAsync("doomed", checkpoint.Request("job-2"), checkpoint.Stream(), Actor);

        await registry.DeleteVersionAsync("doomed", 2, Actor);

        Assert.DoesNotContain(await container.BlobNamesAsync("models/doomed/"), name => name.Contains("/0000002/", StringComparison.Ordinal));
        Assert.DoesNotContain(await container.BlobNamesAsync("models/doomed/idempotency/"), _ => true);
        Assert.Equal(ErrorKind.NotFound,
            (await Assert.ThrowsAsync<IfcbException>(() => registry.GetVersionAsync("doomed/2"))).Kind);

        // A fresh instance (no remembered numbers) must still continue after the deleted number.
        var next = await new ModelRegistry(container).RegisterVersionAsync("doomed", checkpoint.Request("job-2"), checkpoint.Stream(), Actor);
        Assert.Equal(3, next.Version.Version);
        Assert.False(next.AlreadyRegistered);
    }

    [Fact]
    public async Task Deleting_an_aliased_version_is_refused_unless_forced()
    {
        var (registry, _) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync("guarded", Actor);
        var checkpoint = TestCheckpoint.Create();
        await registry.RegisterVersionAsync("guarded", checkpoint.Request(), checkpoint.Stream(), Actor);
        await registry.SetAliasAsync("guarded", "production", 1, Actor);

        var refused = await Assert.ThrowsAsync<IfcbException>(() => registry.DeleteVersionAsync("guarded", 1, Actor));
        Assert.Equal(ErrorKind.FailedPrecondition, refused.Kind);
        Assert.Contains("@production", refused.Message, StringComparison.Ordinal);
        Assert.Equal(ModelVersionStatus.Ready, (await registry.GetVersionAsync("guarded/1")).Status);

        await registry.DeleteVersionAsync("guarded", 1, "admin", force: true);
        Assert.Empty((await registry.GetModelAsync("guarded")).Aliases);
        var audit = (await registry.GetAuditHistoryAsync("guarded")).Items;
        Assert.Contains(audit, e => e.Action == AuditAction.AliasDeleted && e.Details["alias"] == "production" && e.Actor == "admin");
        Assert.Equal(AuditAction.VersionDeleted, audit[^1].Action);
    }

    [Fact]
    public async Task Deleting_a_model_with_versions_needs_force_and_then_removes_every_blob_but_keeps_the_audit()
    {
        var (registry, container) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync("gone", Actor);
        await registry.CreateModelAsync("kept", Actor);
        var checkpoint = TestCheckpoint.Create();
        await registry.RegisterVersionAsync("gone", checkpoint.Request("k"), checkpoint.Stream(), Actor);
        await registry.SetAliasAsync("gone", "production", 1, Actor);

        Assert.Equal(ErrorKind.FailedPrecondition,
            (await Assert.ThrowsAsync<IfcbException>(() => registry.DeleteModelAsync("gone", Actor))).Kind);
        await registry.DeleteModelAsync("gone", Actor, force: true);

        Assert.Empty(await container.BlobNamesAsync("models/gone/"));
        Assert.NotEmpty(await container.BlobNamesAsync("models/kept/"));
        Assert.Equal(ErrorKind.NotFound,
            (await Assert.ThrowsAsync<IfcbException>(() => registry.GetModelAsync("gone"))).Kind);
        Assert.Equal(AuditAction.ModelDeleted, (await registry.GetAuditHistoryAsync("gone")).Items[^1].Action);

        // The name can be reused and numbering starts over for the new model.
        await registry.CreateModelAsync("gone", Actor);
        Assert.Equal(1, (await registry.RegisterVersionAsync("gone", checkpoint.Request("k"), checkpoint.Stream(), Actor)).Version.Version);

        await registry.DeleteModelAsync("kept", Actor);
        Assert.Empty(await container.BlobNamesAsync("models/kept/"));
    }
}
