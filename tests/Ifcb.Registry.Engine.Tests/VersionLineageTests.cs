using Ifcb.Contracts;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine.Tests;

/// <summary><see cref="VersionLineage"/> against Azurite: uses and children recorded once each, listed, deleted with the version.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class VersionLineageTests(AzuriteFixture azurite)
{
    private const string Actor = "tests";

    [Fact]
    public async Task Uses_and_children_are_recorded_once_listed_newest_first_and_deleted_with_the_version()
    {
        var (registry, container) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync("parent", Actor);
        var checkpoint = TestCheckpoint.Create();
        await registry.RegisterVersionAsync("parent", checkpoint.Request(), checkpoint.Stream(), Actor);
        var lineage = new VersionLineage(container, registry);
        var start = DateTimeOffset.UnixEpoch;

        await lineage.RecordUseAsync(ModelRef.ToVersion("parent", 1), new VersionUse("run-1", "run", start.AddMinutes(1)));
        await lineage.RecordUseAsync(ModelRef.ToLatest("parent"), new VersionUse("eval-2", "evaluate", start.AddMinutes(2)));
        // A redelivered event writes the same record again.
        await lineage.RecordUseAsync(ModelRef.ToVersion("parent", 1), new VersionUse("run-1", "run", start.AddMinutes(1)));
        await lineage.RecordChildAsync(ModelRef.ToVersion("parent", 1), ModelRef.ToVersion("season-2", 4), start.AddMinutes(3));

        var found = await lineage.GetAsync(ModelRef.ToVersion("parent", 1));
        Assert.Equal(["eval-2", "run-1"], found.Uses.Select(u => u.JobId));
        Assert.Equal(2, found.UsesTotal);
        Assert.Equal(["season-2/4"], found.Children.Select(c => c.Version));

        Assert.Equal(ErrorKind.InvalidArgument, (await Assert.ThrowsAsync<IfcbException>(() =>
            lineage.RecordUseAsync(ModelRef.ToVersion("parent", 1), new VersionUse("../x", "run", start)))).Kind);
        Assert.Equal(ErrorKind.InvalidArgument, (await Assert.ThrowsAsync<IfcbException>(() =>
            lineage.RecordUseAsync(ModelRef.ToVersion("parent", 1), new VersionUse("run-3", "train", start)))).Kind);
        Assert.Equal(ErrorKind.NotFound, (await Assert.ThrowsAsync<IfcbException>(() =>
            lineage.RecordUseAsync(ModelRef.ToVersion("parent", 2), new VersionUse("run-4", "run", start)))).Kind);

        await registry.DeleteVersionAsync("parent", 1, Actor);
        Assert.Empty(await container.BlobNamesAsync("models/parent/versions/"));
    }
}
