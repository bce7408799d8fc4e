using Ifcb.Platform;

namespace Ifcb.Registry.Engine.Tests;

[Collection(AzuriteCollection.Name)]
public sealed class SearchAndAuditTests(AzuriteFixture azurite)
{
    private const string Actor = "tests";

    [Fact]
    public async Task Search_filters_by_model_tags_metrics_and_status_and_pages_through_results()
    {
        var (registry, _) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync("alpha", Actor);
        await registry.CreateModelAsync("beta", Actor);
        for (var i = 1; i <= 12; i++)
        {
            var checkpoint = TestCheckpoint.Create(64);
            var model = i % 3 == 0 ? "beta" : "alpha";
            var tags = new Dictionary<string, string> { ["dataset"] = i % 2 == 0 ? "even" : "odd" };
            await registry.RegisterVersionAsync(model, checkpoint.Request(metrics: new Dictionary<string, double> { ["f1_weighted"] = i / 10.0 }, tags: tags),
                checkpoint.Stream(), Actor);
        }

        // alpha got i = 1,2,4,5,7,8,10,11 (versions 1..8); beta got i = 3,6,9,12 (versions 1..4).
        var everything = await CollectAsync(registry, new VersionFilter(), pageSize: 5);
        Assert.Equal(12, everything.Items.Count);
        Assert.Equal(3, everything.Pages);
        Assert.Equal(["alpha/1", "alpha/2", "alpha/3", "alpha/4", "alpha/5", "alpha/6", "alpha/7", "alpha/8", "beta/1", "beta/2", "beta/3", "beta/4"],
            everything.Items.Select(v => $"{v.ModelName}/{v.Version}").ToArray());

        var goodAlpha = await CollectAsync(registry,
            new VersionFilter { ModelName = "alpha", Metrics = [MetricThreshold.Parse("f1_weighted>=0.8")] }, pageSize: 1);
        Assert.Equal([0.8, 1.0, 1.1], goodAlpha.Items.Select(v => v.Metrics["f1_weighted"]).ToArray());
        Assert.Equal(3, goodAlpha.Pages);

        var evenBeta = await CollectAsync(registry,
            new VersionFilter { ModelName = "beta", Tags = System.Collections.Immutable.ImmutableSortedDictionary<string, string>.Empty.Add("dataset", "even"), Status = ModelVersionStatus.Ready }, pageSize: 1000);
        Assert.Equal([0.6, 1.2], evenBeta.Items.Select(v => v.Metrics["f1_weighted"]).ToArray());

        Assert.Empty((await registry.SearchVersionsAsync(new VersionFilter { Status = ModelVersionStatus.Failed })).Items);

        var firstPage = await registry.SearchVersionsAsync(new VersionFilter(), pageSize: 5);
        var wrongQuery = await Assert.ThrowsAsync<IfcbException>(() =>
            registry.SearchVersionsAsync(new VersionFilter { ModelName = "alpha" }, 5, firstPage.NextPageToken));
        Assert.Equal(ErrorKind.InvalidArgument, wrongQuery.Kind);
        Assert.Equal(ErrorKind.InvalidArgument,
            (await Assert.ThrowsAsync<IfcbException>(() => registry.SearchVersionsAsync(new VersionFilter(), 5, "not-a-token"))).Kind);
        Assert.Equal(ErrorKind.InvalidArgument,
            (await Assert.ThrowsAsync<IfcbException>(() => registry.SearchVersionsAsync(new VersionFilter(), 1001))).Kind);
        Assert.Equal(ErrorKind.NotFound,
            (await Assert.ThrowsAsync<IfcbException>(() => registry.SearchVersionsAsync(new VersionFilter { ModelName = "gamma" }))).Kind);
    }

    [Fact]
    public async Task Models_list_in_name_order_across_pages()
    {
        var (registry, _) = await azurite.NewRegistryAsync();
        foreach (var name in new[] { "m3", "m1", "m4", "m2", "m5" })
        {
            await registry.CreateModelAsync(name, Actor, $"model {name}", new Dictionary<string, string> { ["team"] = "plankton" });
        }

        var names = new List<string>();
        var pages = 0;
        for (string? token = null; ;)
        {
            var page = await registry.ListModelsAsync(2, token);
            pages++;
            names.AddRange(page.Items.Select(m => m.Name));
            if ((token = page.NextPageToken) is null)
            {
                break;
            }
        }

        Assert.Equal(["m1", "m2", "m3", "m4", "m5"], names);
        Assert.Equal(3, pages);
        Assert.Equal("plankton", (await registry.GetModelAsync("m4")).Tags["team"]);
    }

    [Fact]
    public async Task Audit_history_records_who_did_what_in_order()
    {
        var (registry, _) = await azurite.NewRegistryAsync();
        var checkpoint = TestCheckpoint.Create();
        await registry.CreateModelAsync("audited", "alice", "first");
        await registry.UpdateModelDescriptionAsync("audited", "second", "bob");
        await registry.SetModelTagAsync("audited", "owner", "whoi", "bob");
        await registry.RegisterVersionAsync("audited", checkpoint.Request("train-1"), checkpoint.Stream(), "ci");
        await registry.SetVersionTagAsync("audited", 1, "validated", "yes", "carol");
        await registry.DeleteVersionTagAsync("audited", 1, "validated", "carol");
        await registry.SetAliasAsync("audited", "staging", 1, "dave");
        await registry.DeleteModelTagAsync("audited", "owner", "erin");
        await registry.SetModelTagAsync("audited", "owner", "whoi", "bob"); // re-set: a change, audited
        await registry.SetModelTagAsync("audited", "owner", "whoi", "bob"); // no change: not audited

        var page1 = await registry.GetAuditHistoryAsync("audited", pageSize: 4);
        var page2 = await registry.GetAuditHistoryAsync("audited", pageSize: 100, page1.NextPageToken);
        Assert.Null(page2.NextPageToken);
        var entries = page1.Items.Concat(page2.Items).ToList();

        Assert.Equal(
            [
                (AuditAction.ModelCreated, "alice"), (AuditAction.ModelUpdated, "bob"), (AuditAction.ModelTagSet, "bob"),
                (AuditAction.VersionRegistered, "ci"), (AuditAction.VersionTagSet, "carol"), (AuditAction.VersionTagDeleted, "carol"),
                (AuditAction.AliasSet, "dave"), (AuditAction.ModelTagDeleted, "erin"), (AuditAction.ModelTagSet, "bob"),
            ],
            entries.Select(e => (e.Action, e.Actor)).ToArray());
        Assert.Equal("first", entries[1].Details["previous_description"]);
        Assert.Equal("second", entries[1].Details["description"]);
        Assert.Equal(checkpoint.Sha256, entries[3].Details["sha256"]);
        Assert.Equal("train-1", entries[3].Details["idempotency_key"]);
        Assert.Equal(1, entries[3].Version);
        Assert.All(entries, e => Assert.Equal("audited", e.ModelName));
        Assert.True(entries.Zip(entries.Skip(1)).All(pair => pair.First.Timestamp <= pair.Second.Timestamp));
        var revisions = entries.Where(e => e.ModelRevision is not null).Select(e => e.ModelRevision!.Value).ToList();
        Assert.Equal(revisions.Order(), revisions);
    }

    private static async Task<(List<ModelVersion> Items, int Pages)> CollectAsync(ModelRegistry registry, VersionFilter filter, int pageSize)
    {
        var items = new List<ModelVersion>();
        var pages = 0;
        for (string? token = null; ;)
        {
            var page = await registry.SearchVersionsAsync(filter, pageSize, token);
            pages++;
            items.AddRange(page.Items);
            if ((token = page.NextPageToken) is null)
            {
                return (items, pages);
            }
        }
    }
}
