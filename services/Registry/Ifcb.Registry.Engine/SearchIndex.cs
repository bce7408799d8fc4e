using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Globalization;
using Azure;
using Azure.Storage.Blobs.Models;
using Ifcb.Platform;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>The searchable fields of one version, as a model's search index keeps them (no classes, description, sha256).</summary>
internal sealed record VersionIndexEntry
{
    public required string ModelName { get; init; }

    public required int Version { get; init; }

    public required ModelVersionStatus Status { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    public required DateTimeOffset UpdatedAt { get; init; }

    public ImmutableSortedDictionary<string, double> Metrics { get; init; } = ImmutableSortedDictionary<string, double>.Empty;

    public ImmutableSortedDictionary<string, string> Tags { get; init; } = ImmutableSortedDictionary<string, string>.Empty;

    /// <summary>The version's <see cref="SearchGrammar.VersionParams"/> that it has, as text.</summary>
    public ImmutableSortedDictionary<string, string> Params { get; init; } = ImmutableSortedDictionary<string, string>.Empty;

    /// <summary>
    /// The ETag of the version document this entry was made from (null when unknown): while no intent names the version,
    /// it is the document's current ETag, so a copy of the document with this ETag is the document as it is now.
    /// </summary>
    public string? DocumentETag { get; init; }

    public static VersionIndexEntry Of(Stored<ModelVersion> document)
    {
        ArgumentNullException.ThrowIfNull(document);
        return Of(document.Value) with { DocumentETag = document.ETag.ToString() };
    }

    public static VersionIndexEntry Of(ModelVersion version)
    {
        ArgumentNullException.ThrowIfNull(version);
        var parameters = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["arch"] = version.Arch,
            ["pretrained"] = version.Pretrained ? "true" : "false",
        };
        if (version.Resize is { } resize)
            parameters["resize"] = resize.ToString(CultureInfo.InvariantCulture);
        if (version.ImgNorm is { } norm)
            parameters["img_norm"] = norm.ToString();
        if (version.DatasetFingerprint is { } fingerprint)
            parameters["dataset_fingerprint"] = fingerprint;
        if (version.Source.TrainingJobId is { } job)
            parameters["source_training_job"] = job;
        if (version.Source.Commit is { } commit)
            parameters["source_commit"] = commit;

        return new VersionIndexEntry
        {
            ModelName = version.ModelName, Version = version.Version, Status = version.Status, CreatedAt = version.CreatedAt,
            UpdatedAt = version.UpdatedAt, Metrics = version.Metrics, Tags = version.Tags,
            Params = parameters.ToImmutableSortedDictionary(StringComparer.Ordinal),
        };
    }

    /// <summary>The value of a filter or sort key for this version (missing when it has no such tag, metric or param).</summary>
    public SearchValue ValueOf(SearchKey key) => key.Kind switch
    {
        SearchKeyKind.Name => SearchValue.Of(ModelName),
        SearchKeyKind.Version => SearchValue.Of(Version),
        SearchKeyKind.Status => SearchValue.Of(Status.ToString().ToUpperInvariant()),
        SearchKeyKind.CreationTime => SearchValue.Of(CreatedAt),
        SearchKeyKind.LastUpdatedTime => SearchValue.Of(UpdatedAt),
        SearchKeyKind.Tag => Tags.TryGetValue(key.Key!, out var tag) ? SearchValue.Of(tag) : SearchValue.Missing,
        SearchKeyKind.Metric => Metrics.TryGetValue(key.Key!, out var metric) ? SearchValue.Of(metric) : SearchValue.Missing,
        _ => Params.TryGetValue(key.Key!, out var param) ? SearchValue.Of(param) : SearchValue.Missing,
    };
}

/// <summary>
/// One listing of the indexes (<see cref="SearchIndex.ListAsync"/>): each model's index ETag, the
/// <see cref="SearchChanges"/> marker read just before it, and until when it may be reused while the marker stays the
/// same. <see cref="Id"/> tells listings apart, so that what a search read
/// under one listing (model documents) is reused only under that same listing.
/// </summary>
internal sealed record IndexListing(long Id, ETag? Marker, IReadOnlyDictionary<string, ETag> Indexes, DateTimeOffset ReusableUntil);

/// <summary>
/// A writer's notice that it is about to change one version's document (or, with no <see cref="Version"/>, to create a
/// version whose number it does not know yet). Until it is removed, readers do not trust the index for that version.
/// </summary>
internal sealed record IndexIntent(string Token, int? Version, DateTimeOffset Since);

/// <summary>
/// <c>indexes/{model}.json</c>: the searchable fields of every version of one model, so a search reads one blob per model
/// instead of one per version. <see cref="Complete"/> is false for an index a writer created before anyone built it.
/// </summary>
internal sealed record ModelSearchIndex
{
    public required string ModelName { get; init; }

    public bool Complete { get; init; }

    /// <summary>One entry per version document, ascending by version number.</summary>
    public ImmutableArray<VersionIndexEntry> Entries { get; init; } = [];

    public ImmutableArray<IndexIntent> Intents { get; init; } = [];
}

/// <summary>
/// Keeps each model's <see cref="ModelSearchIndex"/> in step with its version documents, and answers "the searchable fields
/// of every version of model M, as they are now" from it.
/// </summary>
/// <remarks>
/// <para>The index is a second blob, so it cannot change atomically with a version document. Every write of a version
/// document is therefore bracketed (<see cref="TrackAsync"/>): an ETag-guarded write adds an <see cref="IndexIntent"/>
/// first, then the document is written, then a second guarded write re-reads the document and stores its entry while it
/// removes the intent. Because the re-read happens after the index was read and the write is If-Match, any later change
/// to the document was preceded by another intent that either made this write fail (and run again) or is still there.
/// Hence the invariant readers rely on: an entry differs from its document only while an intent names that version (or
/// names no version, for a creation). Readers trust entries, and re-read the documents that intents name; a nameless
/// intent makes them list the model's version documents for numbers the index lacks.</para>
/// <para>A writer that dies leaves its intent: readers keep re-reading that one version (correct, slightly slower) until
/// the intent is older than <see cref="RegistryOptions.IndexIntentTimeout"/>, when the next reader rebuilds the index
/// from the documents and drops it. A missing index is rebuilt; an index a writer created (incomplete) is completed by
/// the next reader. Search reads indexes through an in-process cache validated by the ETags one listing of
/// <c>indexes/</c> returns, so an unchanged index costs nothing to read again.</para>
/// <para>Models created before indexes existed are found by comparing model folders with indexes (on a process's first
/// registry-wide search, then every <see cref="RegistryOptions.IndexDiscoveryInterval"/>) and indexed then. A registry
/// process of an earlier build that still writes versions does not maintain indexes: after a rolling upgrade from such
/// a build, delete <c>indexes/</c> once, and it is rebuilt.</para>
/// </remarks>
internal sealed class SearchIndex(BlobDocumentStore store, RegistryOptions options, TimeProvider time, SearchChanges changes)
{
    private readonly ConcurrentDictionary<string, Stored<ModelSearchIndex>> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, IndexWriteQueue> _writes = new(StringComparer.Ordinal);
    private long _nextDiscoveryTimestamp = long.MinValue;
    private long _listings;
    private IndexListing? _lastListing;

    /// <summary>
    /// Runs <paramref name="write"/> (a write of one version document of <paramref name="modelName"/>) bracketed by intents;
    /// <paramref name="version"/> is null for a creation, whose number <paramref name="written"/> reads from the result.
    /// </summary>
    /// <remarks>
    /// A failure to mark is the caller's failure (nothing was written). Once the document is written, failing to settle
    /// only leaves the intent, which readers honour, so the write still succeeds.
    /// </remarks>
    public async Task<T> TrackAsync<T>(string modelName, int? version, Func<Task<T>> write, Func<T, int?> written,
        CancellationToken cancellationToken)
    {
        var intent = await MarkAsync(modelName, version, cancellationToken);
        T result;
        try
        {
            result = await write();
        }
        catch when (version is not null)
        {
            await SettleAsync(modelName, intent, version);
            throw;
        }

        await SettleAsync(modelName, intent, written(result) ?? version);
        return result;
    }

    /// <summary><see cref="TrackAsync{T}"/> for a write of version <paramref name="version"/> that returns nothing.</summary>
    public Task TrackAsync(string modelName, int version, Func<Task> write, CancellationToken cancellationToken) =>
        TrackAsync<bool>(modelName, version, async () =>
        {
            await write();
            return true;
        }, _ => version, cancellationToken);

    /// <summary>
    /// Every model with an index, and its index's ETag, from one listing; models that lack an index are indexed first
    /// when discovery is due (see the remarks on the class). While the <see cref="SearchChanges"/> marker is unchanged
    /// (read first, one small request) the last listing is returned again, for at most
    /// <see cref="RegistryOptions.SearchSnapshotMaxAge"/>.
    /// </summary>
    public async Task<IndexListing> ListAsync(CancellationToken cancellationToken)
    {
        var marker = await changes.ReadAsync(cancellationToken);
        var now = time.GetTimestamp();
        var utcNow = time.GetUtcNow();
        if (_lastListing is { } last && last.Marker == marker && utcNow < last.ReusableUntil
            && now < Interlocked.Read(ref _nextDiscoveryTimestamp))
            return last;

        var listed = await ListIndexesAsync(cancellationToken);
        if (now >= Interlocked.Read(ref _nextDiscoveryTimestamp))
        {
            var folders = await store.ListChildFoldersAsync(RegistryLayout.ModelsRoot, cancellationToken);
            foreach (var missing in folders.Where(folder => !listed.ContainsKey(folder)))
                listed[missing] = (await RebuildAsync(missing, cancellationToken)).ETag;

            var interval = (long)(options.IndexDiscoveryInterval.TotalSeconds * time.TimestampFrequency);
            Interlocked.Exchange(ref _nextDiscoveryTimestamp, now + interval);
        }

        foreach (var gone in _cache.Keys.Where(model => !listed.ContainsKey(model)))
            _cache.TryRemove(gone, out _);

        var listing = new IndexListing(Interlocked.Increment(ref _listings), marker, listed, utcNow + options.SearchSnapshotMaxAge);
        _lastListing = listing;
        return listing;
    }

    /// <summary>
    /// The searchable fields of every version of <paramref name="modelName"/> as they are now (see the class remarks);
    /// <paramref name="listedETag"/>, from <see cref="ListAsync"/>, lets an unchanged cached index be used unread.
    /// </summary>
    public async Task<IReadOnlyList<VersionIndexEntry>> CurrentEntriesAsync(string modelName, ETag? listedETag,
        CancellationToken cancellationToken)
    {
        var index = await LoadAsync(modelName, listedETag, cancellationToken);
        if (index.Intents.IsEmpty)
            return index.Entries;

        var entries = index.Entries.ToDictionary(e => e.Version);
        var named = index.Intents.Select(i => i.Version).OfType<int>().ToHashSet();
        if (index.Intents.Any(i => i.Version is null))
        {
            var numbers = await store.VersionNumbersAsync(modelName, cancellationToken);
            named.UnionWith(numbers.Where(number => !entries.ContainsKey(number)));
        }

        foreach (var batch in named.Chunk(options.ListReadConcurrency))
        {
            var read = await Task.WhenAll(batch.Select(number =>
                store.ReadAsync<ModelVersion>(RegistryLayout.VersionDocument(modelName, number), cancellationToken)));
            for (var i = 0; i < batch.Length; i++)
            {
                if (read[i] is { } document)
                    entries[batch[i]] = VersionIndexEntry.Of(document);
                else
                    entries.Remove(batch[i]);
            }
        }

        return [.. entries.Values.OrderBy(e => e.Version)];
    }

    /// <summary>Creates an empty, complete index for a model about to be created, unless one is there already.</summary>
    public async Task CreateAsync(string modelName, CancellationToken cancellationToken)
    {
        try
        {
            await store.TryCreateAsync(RegistryLayout.SearchIndex(modelName),
                new ModelSearchIndex { ModelName = modelName, Complete = true }, cancellationToken);
        }
        finally
        {
            await changes.TouchAsync();
        }
    }

    /// <summary>Deletes the model's index (the model itself is gone); a writer still in flight may recreate it, incomplete.</summary>
    public async Task DeleteAsync(string modelName, CancellationToken cancellationToken)
    {
        try
        {
            await store.DeleteAsync(RegistryLayout.SearchIndex(modelName), cancellationToken);
            _cache.TryRemove(modelName, out _);
        }
        finally
        {
            // Also for the model.json its caller deleted just before (see Deletions and ModelRenames).
            await changes.TouchAsync();
        }
    }

    /// <summary>The model's index, built or completed if need be, with intents past their timeout dropped.</summary>
    private async Task<ModelSearchIndex> LoadAsync(string modelName, ETag? listedETag, CancellationToken cancellationToken)
    {
        var stored = listedETag is { } etag && _cache.TryGetValue(modelName, out var cached) && SameETag(cached.ETag, etag)
            ? cached
            : await store.ReadAsync<ModelSearchIndex>(RegistryLayout.SearchIndex(modelName), cancellationToken);
        var expired = time.GetUtcNow() - options.IndexIntentTimeout;
        if (stored is null || !stored.Value.Complete || stored.Value.Intents.Any(i => i.Since < expired))
            stored = await RebuildAsync(modelName, cancellationToken);

        _cache[modelName] = stored;
        return stored.Value;
    }

    /// <summary>
    /// Builds the index from the version documents (read after the index, inside its guarded write, so a concurrent
    /// writer's intent either survives or forces another round), creating it if missing, and drops expired intents.
    /// </summary>
    public async Task<Stored<ModelSearchIndex>> RebuildAsync(string modelName, CancellationToken cancellationToken)
    {
        try
        {
            return await RebuildUntouchedAsync(modelName, cancellationToken);
        }
        finally
        {
            await changes.TouchAsync();
        }
    }

    private async Task<Stored<ModelSearchIndex>> RebuildUntouchedAsync(string modelName, CancellationToken cancellationToken)
    {
        var name = RegistryLayout.SearchIndex(modelName);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var (document, _) = await store.UpdateAsync<ModelSearchIndex>(name, async index =>
                {
                    var numbers = await store.VersionNumbersAsync(modelName, cancellationToken);
                    var entries = new List<VersionIndexEntry>(numbers.Count);
                    foreach (var batch in numbers.Chunk(options.ListReadConcurrency))
                    {
                        var read = await Task.WhenAll(batch.Select(number =>
                            store.ReadAsync<ModelVersion>(RegistryLayout.VersionDocument(modelName, number), cancellationToken)));
                        entries.AddRange(read.OfType<Stored<ModelVersion>>().Select(VersionIndexEntry.Of));
                    }

                    var expired = time.GetUtcNow() - options.IndexIntentTimeout;
                    var live = index.Intents.RemoveAll(i => i.Since < expired);
                    return index with { Complete = true, Entries = [.. entries], Intents = live };
                }, () => new IndexMissingException(), cancellationToken);
                return document;
            }
            catch (IndexMissingException) when (attempt < 3)
            {
                await store.TryCreateAsync(name, new ModelSearchIndex { ModelName = modelName }, cancellationToken);
            }
        }
    }

    private async Task<IndexIntent> MarkAsync(string modelName, int? version, CancellationToken cancellationToken)
    {
        var intent = new IndexIntent(Guid.NewGuid().ToString("N"), version, time.GetUtcNow());
        await ApplyAsync(modelName, new IndexChange(intent, Settles: false)).WaitAsync(cancellationToken);
        return intent;
    }

    /// <summary>Removes the intent and stores the entry of <paramref name="version"/> as its document now stands; best effort.</summary>
    private async Task SettleAsync(string modelName, IndexIntent intent, int? version)
    {
        if (version is null)
            return; // a creation that failed before it had a number: its intent stays until it expires

        try
        {
            // The document is written; settle even if the caller has given up (no token), and never fail the caller's write.
            await ApplyAsync(modelName, new IndexChange(intent with { Version = version }, Settles: true));
        }
        catch (Exception e) when (e is RequestFailedException or IfcbException or InvalidDataException)
        {
            // The intent stays; readers re-read this version until a rebuild drops it.
        }
    }

    /// <summary>
    /// Queues a change to the model's index and returns when it is stored. Changes queued in this process while a write
    /// is in flight are stored together by the next one (group commit), so concurrent registrations of one model cost a
    /// few index writes, not a contended read-modify-write each.
    /// </summary>
    private Task ApplyAsync(string modelName, IndexChange change)
    {
        var queue = _writes.GetOrAdd(modelName, _ => new IndexWriteQueue());
        bool lead;
        lock (queue.Lock)
        {
            queue.Pending.Add(change);
            lead = !queue.Draining;
            queue.Draining = true;
        }

        if (lead)
            _ = DrainAsync(modelName, queue);

        return change.Stored.Task;
    }

    private async Task DrainAsync(string modelName, IndexWriteQueue queue)
    {
        while (true)
        {
            List<IndexChange> batch;
            lock (queue.Lock)
            {
                if (queue.Pending.Count == 0)
                {
                    queue.Draining = false;
                    return;
                }

                batch = queue.Pending;
                queue.Pending = [];
            }

            try
            {
                await StoreAsync(modelName, batch);
                await changes.TouchAsync();
                batch.ForEach(change => change.Stored.TrySetResult());
            }
            catch (Exception e)
            {
                await changes.TouchAsync(); // the write may have landed
                batch.ForEach(change => change.Stored.TrySetException(e));
            }
        }
    }

    /// <summary>One guarded write of the index that adds the batch's new intents and settles its finished ones.</summary>
    private async Task StoreAsync(string modelName, List<IndexChange> batch)
    {
        var cancellationToken = CancellationToken.None;
        var name = RegistryLayout.SearchIndex(modelName);
        var added = batch.Where(c => !c.Settles).Select(c => c.Intent).ToList();
        var settled = batch.Where(c => c.Settles).Select(c => c.Intent).ToList();
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await store.UpdateAsync<ModelSearchIndex>(name, async index =>
                {
                    // The documents are read after the index, inside its guarded write (see the class remarks).
                    var versions = settled.Select(i => i.Version!.Value).Distinct().ToArray();
                    var documents = await Task.WhenAll(versions.Select(v =>
                        store.ReadAsync<ModelVersion>(RegistryLayout.VersionDocument(modelName, v), cancellationToken)));
                    var entries = index.Entries.RemoveAll(e => versions.Contains(e.Version))
                        .AddRange(documents.OfType<Stored<ModelVersion>>().Select(VersionIndexEntry.Of))
                        .Sort((a, b) => a.Version.CompareTo(b.Version));
                    var tokens = settled.Select(i => i.Token).ToHashSet();
                    var intents = index.Intents.RemoveAll(i => tokens.Contains(i.Token)).AddRange(added);
                    return index with { Entries = entries, Intents = intents };
                }, () => new IndexMissingException(), cancellationToken);
                return;
            }
            catch (IndexMissingException) when (attempt < 3)
            {
                // Never built (or deleted with its model): an incomplete index holds the intents until a reader completes
                // it, so the settled ones need no entries. A write to a model that does not exist, or was renamed, leaves
                // no index behind.
                if (added.Count == 0)
                    return;

                await CheckIndexableAsync(modelName, added, cancellationToken);

                var created = new ModelSearchIndex { ModelName = modelName, Intents = [.. added] };
                if (await store.TryCreateAsync(name, created, cancellationToken) is not null)
                    return;
            }
        }
    }

    /// <summary>A listing gives an ETag without the quotes a download's ETag header has; the value is what counts.</summary>
    private static bool SameETag(ETag a, ETag b) => a.ToString().Trim('"') == b.ToString().Trim('"');

    /// <summary>
    /// Refuses to create an index for a model that is renamed away (its error) or that has neither a model.json nor the
    /// versions the intents name (NotFound); a version of a model being deleted may still be settled.
    /// </summary>
    private async Task CheckIndexableAsync(string modelName, List<IndexIntent> intents, CancellationToken cancellationToken)
    {
        if (await store.ReadAsync<RegisteredModel>(RegistryLayout.ModelDocument(modelName), cancellationToken) is { } model)
        {
            if (ModelDocuments.Unusable(model.Value) is { Kind: ErrorKind.NotFound } renamed)
                throw renamed;

            return;
        }

        foreach (var version in intents.Select(i => i.Version).OfType<int>().Distinct())
        {
            if (await store.Container.GetBlobClient(RegistryLayout.VersionDocument(modelName, version)).ExistsAsync(cancellationToken))
                return;
        }

        throw ModelDocuments.NotFound(modelName);
    }

    private async Task<Dictionary<string, ETag>> ListIndexesAsync(CancellationToken cancellationToken)
    {
        var listed = new Dictionary<string, ETag>(StringComparer.Ordinal);
        try
        {
            var listing = store.Container.GetBlobsAsync(new GetBlobsOptions { Prefix = RegistryLayout.IndexesRoot }, cancellationToken);
            await foreach (var blob in listing)
            {
                if (RegistryLayout.ModelOfSearchIndex(blob.Name) is { } model && blob.Properties.ETag is { } etag)
                    listed[model] = etag;
            }
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            // No container yet: no models.
        }

        return listed;
    }

    private sealed class IndexMissingException() : Exception("The search index does not exist.");

    /// <summary>A queued change: add <see cref="Intent"/>, or (settling) remove it and refresh its version's entry.</summary>
    private sealed record IndexChange(IndexIntent Intent, bool Settles)
    {
        public TaskCompletionSource Stored { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>The changes waiting for one model's next index write, and whether a write loop is running.</summary>
    private sealed class IndexWriteQueue
    {
        public Lock Lock { get; } = new();

        public List<IndexChange> Pending { get; set; } = [];

        public bool Draining { get; set; }
    }
}
