using Ifcb.Contracts;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine.Tests;

/// <summary><see cref="VersionEvaluations"/> against Azurite: one record per dataset content, newest first, gone with the version.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class VersionEvaluationsTests(AzuriteFixture azurite)
{
    private const string Actor = "tests";

    private static EvaluationRecord Record(string fingerprint, double f1, int minute) => new("holdout-2024", fingerprint, "job-" + minute,
        DateTimeOffset.UnixEpoch.AddMinutes(minute), 30, f1, f1, f1, """{"f1_weighted": 0.5}""");

    [Fact]
    public async Task Records_are_kept_per_dataset_content_newest_first_and_deleted_with_the_version()
    {
        var (registry, container) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync("scored", Actor);
        var checkpoint = TestCheckpoint.Create();
        await registry.RegisterVersionAsync("scored", checkpoint.Request(), checkpoint.Stream(), Actor);
        var evaluations = new VersionEvaluations(container, registry);

        await evaluations.RecordAsync(ModelRef.ToVersion("scored", 1), Record("aaa111", 0.5, 1));
        await evaluations.RecordAsync(ModelRef.ToLatest("scored"), Record("bbb222", 0.7, 2));
        // The same content evaluated again (or the event redelivered) replaces its record.
        await evaluations.RecordAsync(ModelRef.ToVersion("scored", 1), Record("aaa111", 0.6, 3));

        var kept = await evaluations.ListAsync(ModelRef.ToVersion("scored", 1));
        Assert.Equal(["aaa111", "bbb222"], kept.Select(r => r.DatasetFingerprint));
        Assert.Equal(0.6, kept[0].F1Weighted);
        Assert.Equal("job-3", kept[0].JobId);

        var refused = await Assert.ThrowsAsync<IfcbException>(() =>
            evaluations.RecordAsync(ModelRef.ToVersion("scored", 1), Record("../x", 0.1, 4)));
        Assert.Equal(ErrorKind.InvalidArgument, refused.Kind);
        Assert.Equal(ErrorKind.NotFound, (await Assert.ThrowsAsync<IfcbException>(() =>
            evaluations.RecordAsync(ModelRef.ToVersion("scored", 2), Record("ccc333", 0.1, 5)))).Kind);

        await registry.DeleteVersionAsync("scored", 1, Actor);
        Assert.Empty(await container.BlobNamesAsync("models/scored/versions/"));
    }
}
