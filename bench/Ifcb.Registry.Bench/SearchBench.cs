using System.Collections.Immutable;
using System.Diagnostics;
using Azure.Storage.Blobs;
using Ifcb.Platform.Storage;
using Ifcb.Registry.Engine;

/// <summary>
/// Search with a selective filter and an ordering over a registry of many models × versions: the engine's search (per-model
/// index blobs, unchanged ones cached by ETag) against the same query answered by reading every version document, in one
/// run on the same storage. The registry is filled by writing version documents directly (no checkpoints: search never
/// reads them), then its indexes are deleted, so the first search also shows what discovering and rebuilding them costs.
/// </summary>
internal static class SearchBench
{
    public const string Filter = "tags.stage = 'production' AND metrics.f1_weighted >= 0.9";
    public const string OrderBy = "metrics.f1_weighted DESC, creation_time ASC";
    private const int PageSize = 100;
    private const int ScanConcurrency = 32;

    public static async Task RunAsync(BlobContainerClient container, int models, int versionsPerModel, int indexRuns, int scanRuns)
    {
        var options = new RegistryOptions();
        var store = RegistryStore.Create(container, options);
        var fill = Stopwatch.StartNew();
        await FillAsync(container, store, models, versionsPerModel);
        Console.WriteLine($"Search: filled {models} models × {versionsPerModel} versions in {fill.Elapsed.TotalSeconds:F1} s " +
            "(version documents written directly; indexes deleted)");
        Console.WriteLine($"  filter   {Filter}");
        Console.WriteLine($"  order_by {OrderBy}, page size {PageSize}");

        var filter = new VersionFilter { Expression = SearchFilter.ForVersions(Filter) };
        var order = SearchOrder.ForVersions(OrderBy);
        var registry = new ModelRegistry(container, options);
        var first = Stopwatch.StartNew();
        var indexed = await registry.SearchVersionsAsync(filter, order, PageSize);
        Console.WriteLine(
            $"  first search (finds {models} models without an index and builds them): {first.Elapsed.TotalMilliseconds:F0} ms");

        var scanned = await ScanAsync(store, filter, order);
        var same = indexed.Items.Select(v => (v.ModelName, v.Version)).SequenceEqual(scanned.Select(v => (v.ModelName, v.Version)));
        Console.WriteLine($"  both answer {indexed.Items.Count} versions, identical: {same}");

        var warm = await Measure(indexRuns, () => registry.SearchVersionsAsync(filter, order, PageSize));
        // As after a write by any replica: the changes marker moved, so the search lists the indexes again and reads the
        // page's model documents (the write itself is not timed).
        var changes = new SearchChanges(store);
        var afterWrite = await Measure(indexRuns / 2, async () =>
        {
            await changes.TouchAsync();
            var start = Stopwatch.GetTimestamp();
            await registry.SearchVersionsAsync(filter, order, PageSize);
            return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }, timedInside: true);
        var cold = await Measure(Math.Max(indexRuns / 10, 5),
            () => new ModelRegistry(container, options).SearchVersionsAsync(filter, order, PageSize));
        var scan = await Measure(scanRuns, () => ScanAsync(store, filter, order));
        // What the storage underneath costs, as references for the numbers above.
        var listing = await Measure(indexRuns / 2, async () =>
        {
            var count = 0;
            await foreach (var blob in container.GetBlobsAsync(new Azure.Storage.Blobs.Models.GetBlobsOptions { Prefix = "indexes/" }))
                count++;
            return count;
        });
        var get = await Measure(indexRuns / 2,
            () => store.ReadAsync<RegisteredModel>("models/model-000/model.json", CancellationToken.None));
        var head = await Measure(indexRuns / 2, () => changes.ReadAsync(CancellationToken.None));
        Console.WriteLine("                                              runs     p50 ms     p99 ms");
        Report("raw: one listing of indexes/", listing);
        Report("raw: one GET of a model.json", get);
        Report("raw: one HEAD of search/changes.json", head);
        Report("index search (no write since the last search)", warm);
        Report("index search (right after a write: re-lists)", afterWrite);
        Report("index search (fresh process: reads every index)", cold);
        Report("reading every version document", scan);
        Console.WriteLine($"  speed-up at p50: {Percentile(scan, 0.5) / Percentile(warm, 0.5):F0}x cached, " +
            $"{Percentile(scan, 0.5) / Percentile(cold, 0.5):F1}x fresh (goal >= 10x); " +
            $"p99 {Percentile(warm, 0.99):F1} ms cached, {Percentile(afterWrite, 0.99):F1} ms right after a write (goal < 50 ms)");
    }

    private static async Task FillAsync(BlobContainerClient container, BlobDocumentStore store, int models, int versionsPerModel)
    {
        var registry = new ModelRegistry(container);
        var names = Enumerable.Range(0, models).Select(m => $"model-{m:D3}").ToArray();
        await Parallel.ForEachAsync(names, new ParallelOptions { MaxDegreeOfParallelism = 16 },
            async (name, token) => await registry.CreateModelAsync(name, "bench", cancellationToken: token));

        var random = new Random(42);
        var start = DateTimeOffset.UtcNow.AddDays(-30);
        var versions = names.SelectMany((name, m) => Enumerable.Range(1, versionsPerModel).Select(v =>
        {
            var created = start.AddMinutes((m * versionsPerModel) + v);
            // About 1 in 50 versions is tagged production, and a fifth of those reach f1 0.9: a selective filter.
            var stage = random.Next(50) == 0 ? "production" : random.Next(2) == 0 ? "candidate" : "archived";
            return new ModelVersion
            {
                ModelName = name, Version = v, Status = ModelVersionStatus.Ready, Arch = v % 2 == 0 ? "resnet18" : "inception_v3",
                Classes = ["diatom", "dinoflagellate", "ciliate"], CheckpointBlob = $"models/{name}/versions/{v:D7}/checkpoint.ifcbmodel",
                Sha256 = new string('0', 64), SizeBytes = 1, CreatedAt = created, CreatedBy = "bench", UpdatedAt = created,
                UpdatedBy = "bench",
                Metrics = ImmutableSortedDictionary.CreateRange(StringComparer.Ordinal, [
                    new KeyValuePair<string, double>("f1_weighted", Math.Round(0.5 + (random.NextDouble() / 2), 4)),
                    new("val_loss", Math.Round(random.NextDouble(), 4)),
                ]),
                Tags = ImmutableSortedDictionary.CreateRange(StringComparer.Ordinal, [new KeyValuePair<string, string>("stage", stage)]),
            };
        })).ToArray();
        await Parallel.ForEachAsync(versions, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (version, token) =>
            await store.PutAsync($"models/{version.ModelName}/versions/{version.Version:D7}/version.json", version, token));
        await Parallel.ForEachAsync(names, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (name, token) =>
        {
            await store.DeleteAsync($"indexes/{name}.json", token);
            await store.UpdateAsync<RegisteredModel>($"models/{name}/model.json",
                model => model with { LatestVersion = versionsPerModel }, () => new InvalidOperationException(name), token);
        });
    }

    /// <summary>The query without an index: every version document read, filtered, sorted, paged; then the page's models.</summary>
    private static async Task<List<ModelVersion>> ScanAsync(BlobDocumentStore store, VersionFilter filter, SearchOrder order)
    {
        var models = await store.ListChildFoldersAsync("models/", CancellationToken.None);
        var documents = new List<string>();
        foreach (var model in models)
        {
            var numbers = await store.VersionNumbersAsync(model, CancellationToken.None);
            documents.AddRange(numbers.Select(n => $"models/{model}/versions/{n:D7}/version.json"));
        }

        var matching = new System.Collections.Concurrent.ConcurrentBag<ModelVersion>();
        await Parallel.ForEachAsync(documents, new ParallelOptions { MaxDegreeOfParallelism = ScanConcurrency }, async (name, token) =>
        {
            if (await store.ReadAsync<ModelVersion>(name, token) is { } version && filter.Matches(version.Value))
                matching.Add(version.Value);
        });

        var page = matching
            .Select(v => (Version: v, Keys: order.ValuesOf(VersionIndexEntry.Of(v).ValueOf)))
            .Order(Comparer<(ModelVersion Version, ImmutableArray<SearchValue> Keys)>.Create((a, b) =>
            {
                var byKeys = order.Compare(a.Keys, b.Keys);
                if (byKeys != 0)
                    return byKeys;

                var byName = string.CompareOrdinal(a.Version.ModelName, b.Version.ModelName);
                return byName != 0 ? byName : a.Version.Version.CompareTo(b.Version.Version);
            }))
            .Take(PageSize)
            .Select(v => v.Version)
            .ToList();
        // Aliases live in model.json, as in the engine's search.
        await Task.WhenAll(page.Select(v => v.ModelName).Distinct().Select(m =>
            store.ReadAsync<RegisteredModel>($"models/{m}/model.json", CancellationToken.None)));
        return page;
    }

    /// <param name="timedInside">The operation returns its own duration in milliseconds (it does untimed work first).</param>
    private static async Task<double[]> Measure<T>(int runs, Func<Task<T>> search, bool timedInside = false)
    {
        await search(); // warm
        var latencies = new double[runs];
        for (var i = 0; i < runs; i++)
        {
            var start = Stopwatch.GetTimestamp();
            var result = await search();
            latencies[i] = timedInside && result is double inside ? inside : Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        Array.Sort(latencies);
        return latencies;
    }

    private static void Report(string what, double[] sorted) =>
        Console.WriteLine($"  {what,-44} {sorted.Length,4} {Percentile(sorted, 0.5),10:F1} {Percentile(sorted, 0.99),10:F1}");

    private static double Percentile(double[] sorted, double p) =>
        sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
}
