using System.Collections.Concurrent;
using Azure.Storage.Blobs;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine.Tests;

/// <summary>
/// Searching with a filter and an ordering against real storage: ties, keyset paging while versions are registered,
/// and the per-model search index (rebuilt when missing, trusted only where no writer has announced a change).
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class SearchTests(AzuriteFixture azurite)
{
    private const string Actor = "tests";

    [Fact]
    public async Task Orders_by_several_keys_with_ties_broken_by_name_then_version()
    {
        var clock = new ManualClock();
        var (registry, _) = await azurite.NewRegistryAsync(clock: clock);
        // f1 per version; null = no such metric. Registered one second apart: alpha/1 first, beta/2 last.
        (string Model, double? F1)[] versions = [("alpha", 0.9), ("alpha", 0.8), ("alpha", 0.9), ("alpha", null), ("beta", 0.8), ("beta", 0.9)];
        foreach (var (model, f1) in versions)
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            await RegisterAsync(registry, model, f1);
        }

        Assert.Equal(["alpha/1", "alpha/3", "beta/2", "alpha/2", "beta/1", "alpha/4"],
            await SearchAllAsync(registry, "", "metrics.f1_weighted DESC", pageSize: 2));
        Assert.Equal(["alpha/2", "beta/1", "alpha/3", "beta/2", "alpha/1", "alpha/4"],
            await SearchAllAsync(registry, "", "metrics.f1_weighted ASC, version DESC", pageSize: 4));
        Assert.Equal(["beta/2", "beta/1", "alpha/4", "alpha/3", "alpha/2", "alpha/1"],
            await SearchAllAsync(registry, "", "creation_time DESC", pageSize: 5));
        Assert.Equal(["alpha/3", "alpha/1"],
            await SearchAllAsync(registry, "name = 'alpha' AND metrics.f1_weighted >= 0.85", "version DESC", pageSize: 1));
        Assert.Equal(["alpha/1", "alpha/2", "alpha/3", "alpha/4", "beta/1", "beta/2"],
            await SearchAllAsync(registry, "status = 'READY' AND params.arch = 'resnet18'", "", pageSize: 100));

        var page = await registry.SearchVersionsAsync("", "metrics.f1_weighted DESC", pageSize: 2);
        var otherOrder = await Assert.ThrowsAsync<Ifcb.Platform.IfcbException>(() =>
            registry.SearchVersionsAsync("", "metrics.f1_weighted ASC", 2, page.NextPageToken));
        Assert.Contains("belongs to a different query", otherOrder.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Pages_neither_repeat_nor_skip_versions_while_others_are_registered()
    {
        var (registry, container) = await azurite.NewRegistryAsync();
        for (var i = 1; i <= 12; i++)
            await RegisterAsync(registry, "stable", i / 20.0);

        // A second replica keeps registering versions with metrics above, between and below those being paged through.
        var replica = new ModelRegistry(container);
        using var stop = new CancellationTokenSource();
        var registered = new ConcurrentBag<int>();
        var writer = Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
                registered.Add(await RegisterAsync(replica, "stable", i % 3 == 0 ? 0.99 : i % 3 == 1 ? 0.325 : 0.01));
        });

        var seen = new List<(int Version, double F1)>();
        for (string? token = null; ;)
        {
            var page = await registry.SearchVersionsAsync("metrics.f1_weighted > 0", "metrics.f1_weighted DESC", 3, token);
            seen.AddRange(page.Items.Select(v => (v.Version, v.Metrics["f1_weighted"])));
            await Task.Delay(50);
            if ((token = page.NextPageToken) is null)
                break;
        }

        await stop.CancelAsync();
        await writer;
        Assert.NotEmpty(registered);
        Assert.Equal(seen.Count, seen.Select(s => s.Version).Distinct().Count());
        Assert.Superset(Enumerable.Range(1, 12).ToHashSet(), seen.Select(s => s.Version).ToHashSet());
        Assert.Equal(seen.Select(s => s.F1).OrderDescending(), seen.Select(s => s.F1));
    }

    [Fact]
    public async Task Models_are_searched_by_name_and_tags_and_ordered()
    {
        var clock = new ManualClock();
        var (registry, _) = await azurite.NewRegistryAsync(clock: clock);
        foreach (var (name, team) in new[] { ("plankton-a", "whoi"), ("plankton-b", "mbari"), ("diatoms", "whoi"), ("plankton-c", "whoi") })
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            await registry.CreateModelAsync(name, Actor, tags: new Dictionary<string, string> { ["team"] = team });
        }

        var names = new List<string>();
        for (string? token = null; ;)
        {
            var page = await registry.SearchModelsAsync("name LIKE 'plankton%' AND tags.team = 'whoi'", "creation_time DESC", 1, token);
            names.AddRange(page.Items.Select(m => m.Name));
            if ((token = page.NextPageToken) is null)
                break;
        }

        Assert.Equal(["plankton-c", "plankton-a"], names);
        Assert.Equal(["diatoms", "plankton-a", "plankton-b", "plankton-c"],
            (await registry.SearchModelsAsync(null, null)).Items.Select(m => m.Name));
    }

    [Fact]
    public async Task A_missing_index_is_rebuilt_and_one_left_incomplete_is_completed()
    {
        var (registry, container) = await azurite.NewRegistryAsync(new RegistryOptions { IndexDiscoveryInterval = TimeSpan.Zero });
        await RegisterAsync(registry, "rebuilt", 0.5);
        await RegisterAsync(registry, "rebuilt", 0.7);
        await container.GetBlobClient("indexes/rebuilt.json").DeleteAsync();

        // A fresh process (empty cache) and the same one: both find the model without its index and rebuild it.
        Assert.Equal(["rebuilt/2", "rebuilt/1"], await SearchAllAsync(new ModelRegistry(container), "", "version DESC", 10));
        await container.GetBlobClient("indexes/rebuilt.json").DeleteAsync();
        Assert.Equal(["rebuilt/2"], await SearchAllAsync(registry, "metrics.f1_weighted > 0.6", "", 10));

        // A writer that finds no index creates an incomplete one holding only its intent; the next search completes it.
        await container.GetBlobClient("indexes/rebuilt.json").DeleteAsync();
        await registry.SetVersionTagAsync("rebuilt", 1, "stage", "production", Actor);
        Assert.Equal(["rebuilt/1"], await SearchAllAsync(registry, "name = 'rebuilt' AND tags.stage = 'production'", "", 10));
        var index = await ReadIndexAsync(container, "rebuilt");
        Assert.True(index.Complete);
        Assert.Equal([1, 2], index.Entries.Select(e => e.Version));
    }

    [Fact]
    public async Task An_intent_left_by_a_dead_writer_makes_searches_read_that_version_until_it_expires()
    {
        var clock = new ManualClock();
        var (registry, container) = await azurite.NewRegistryAsync(clock: clock);
        await RegisterAsync(registry, "crashed", 0.5);
        await RegisterAsync(registry, "crashed", 0.6);
        var store = RegistryStore.Create(container, new RegistryOptions());

        // The index is what a search reads: a document changed behind its back, with no intent, is not seen.
        await RewriteAsync(store, "crashed", 2, v => v with { Tags = v.Tags.SetItem("stage", "hidden") });
        Assert.Empty(await SearchAllAsync(registry, "tags.stage = 'hidden'", "", 10));

        // A writer that announced its change (an intent, then its touch of the changes marker) and died after writing the
        // document: searches read that document.
        await store.UpdateAsync<ModelSearchIndex>(RegistryLayout.SearchIndex("crashed"),
            index => index with { Intents = [new IndexIntent("dead-writer", 1, clock.GetUtcNow())] },
            () => new InvalidOperationException(), CancellationToken.None);
        await new SearchChanges(store).TouchAsync();
        await RewriteAsync(store, "crashed", 1, v => v with { Tags = v.Tags.SetItem("stage", "production") });
        Assert.Equal(["crashed/1"], await SearchAllAsync(registry, "tags.stage = 'production'", "", 10));

        // Once the intent is older than IndexIntentTimeout, the next search rebuilds the index from the documents.
        clock.Advance(new RegistryOptions().IndexIntentTimeout + TimeSpan.FromSeconds(1));
        Assert.Equal(["crashed/2"], await SearchAllAsync(registry, "tags.stage = 'hidden'", "", 10));
        var index = await ReadIndexAsync(container, "crashed");
        Assert.Empty(index.Intents);
        Assert.Equal(["production", "hidden"], index.Entries.Select(e => e.Tags["stage"]));
    }

    [Fact]
    public async Task Searches_reuse_their_listing_until_any_replica_writes_and_at_most_for_the_snapshot_age()
    {
        var clock = new ManualClock();
        var (registry, container) = await azurite.NewRegistryAsync(clock: clock);
        var replica = new ModelRegistry(container, timeProvider: clock);
        await RegisterAsync(registry, "cached", 0.5);
        await RegisterAsync(registry, "cached", 0.6);
        Assert.Equal(["cached/2", "cached/1"], await SearchAllAsync(registry, "", "version DESC", 10));

        // Another replica's writes are seen at once: each touched the changes marker before its call returned.
        await replica.SetAliasAsync("cached", "production", 1, Actor);
        Assert.Equal([[], ["production"]], await AliasesAsync(registry));
        await RegisterAsync(replica, "cached", 0.7);
        Assert.Equal(["cached/3", "cached/2", "cached/1"], await SearchAllAsync(registry, "", "version DESC", 10));

        // A change behind the registry's back (as a writer that died before its touch leaves it) is not seen while the
        // marker is unchanged: the search reused its listing and model document...
        var store = RegistryStore.Create(container, new RegistryOptions());
        await store.UpdateAsync<RegisteredModel>(RegistryLayout.ModelDocument("cached"),
            m => m with { Aliases = m.Aliases.SetItem("staging", 2) }, () => new InvalidOperationException(), CancellationToken.None);
        Assert.Equal([[], [], ["production"]], await AliasesAsync(registry));

        // ...and is once the snapshot is older than SearchSnapshotMaxAge, or at once by a process that had no snapshot.
        Assert.Equal([[], ["staging"], ["production"]], await AliasesAsync(new ModelRegistry(container, timeProvider: clock)));
        clock.Advance(new RegistryOptions().SearchSnapshotMaxAge + TimeSpan.FromSeconds(1));
        Assert.Equal([[], ["staging"], ["production"]], await AliasesAsync(registry));
    }

    private static async Task<List<string[]>> AliasesAsync(ModelRegistry registry) =>
        [.. (await registry.SearchVersionsAsync("name LIKE 'cached%'", "version DESC")).Items.Select(v => v.Aliases.ToArray())];

    [Fact]
    public async Task Concurrent_writers_leave_the_index_equal_to_the_documents()
    {
        var (registry, container) = await azurite.NewRegistryAsync();
        await RegisterAsync(registry, "busy", 0.1);
        var replicas = new[] { registry, new ModelRegistry(container), new ModelRegistry(container) };
        await Task.WhenAll(Enumerable.Range(0, 24).Select(i => Task.Run(async () =>
        {
            var replica = replicas[i % replicas.Length];
            if (i % 4 == 0)
                await replica.SetVersionTagAsync("busy", 1, $"tag-{i}", "x", Actor);
            else
                await RegisterAsync(replica, "busy", i / 100.0);
        })));
        await registry.DeleteVersionAsync("busy", 3, Actor);

        var store = RegistryStore.Create(container, new RegistryOptions());
        var index = await ReadIndexAsync(container, "busy");
        Assert.Empty(index.Intents);
        var numbers = await store.VersionNumbersAsync("busy", CancellationToken.None);
        Assert.Equal(numbers, index.Entries.Select(e => e.Version));
        foreach (var entry in index.Entries)
        {
            var document = await store.ReadAsync<ModelVersion>(RegistryLayout.VersionDocument("busy", entry.Version), CancellationToken.None);
            Assert.Equivalent(VersionIndexEntry.Of(document!), entry, strict: true);
        }
    }

    private static async Task<int> RegisterAsync(ModelRegistry registry, string model, double? f1)
    {
        var checkpoint = TestCheckpoint.Create(64);
        var metrics = f1 is { } value ? new Dictionary<string, double> { ["f1_weighted"] = value } : null;
        await registry.EnsureModelAsync(model, Actor, CancellationToken.None);
        return (await registry.RegisterVersionAsync(model, checkpoint.Request(metrics: metrics), checkpoint.Stream(), Actor)).Version.Version;
    }

    private static async Task<List<string>> SearchAllAsync(ModelRegistry registry, string filter, string orderBy, int pageSize)
    {
        var found = new List<string>();
        for (string? token = null; ;)
        {
            var page = await registry.SearchVersionsAsync(filter, orderBy, pageSize, token);
            found.AddRange(page.Items.Select(v => $"{v.ModelName}/{v.Version}"));
            if ((token = page.NextPageToken) is null)
                return found;
        }
    }

    private static async Task RewriteAsync(BlobDocumentStore store, string model, int version, Func<ModelVersion, ModelVersion> change) =>
        await store.UpdateAsync<ModelVersion>(RegistryLayout.VersionDocument(model, version), change,
            () => new InvalidOperationException(), CancellationToken.None);

    private static async Task<ModelSearchIndex> ReadIndexAsync(BlobContainerClient container, string model) =>
        (await RegistryStore.Create(container, new RegistryOptions())
            .ReadAsync<ModelSearchIndex>(RegistryLayout.SearchIndex(model), CancellationToken.None))!.Value;
}
