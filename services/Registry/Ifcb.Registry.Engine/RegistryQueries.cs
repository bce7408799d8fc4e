using System.Collections.Concurrent;
using System.Collections.Immutable;
using Azure;
using Ifcb.Contracts;
using Ifcb.Platform;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>
/// The registry's reads: lists models, resolves a version reference, searches versions. Every version comes back with
/// its aliases (they live in model.json), and an abandoned PENDING version is expired before it is returned.
/// </summary>
internal sealed class RegistryQueries(
    BlobDocumentStore store, RegistryOptions options, ModelDocuments models, PendingExpiry expiry, SearchIndex index)
{
    /// <summary>How many version documents searches keep in memory (see <see cref="TryCachedDocument"/>).</summary>
    private const int MaxCachedDocuments = 20_000;

    /// <summary>
    /// Version documents this process has read for search results, by model and number. One is used only when its ETag is
    /// the one the model's search index records, which is the document's current ETag while no intent names the version.
    /// </summary>
    private readonly ConcurrentDictionary<(string Model, int Version), Stored<ModelVersion>> _documents = new();

    /// <summary>
    /// Model documents searches read, each with the <see cref="IndexListing.Id"/> it was read under: reused only while
    /// <see cref="SearchIndex.ListAsync"/> returns that same listing, i.e. while no model document can have changed (the
    /// listing's <see cref="SearchChanges"/> marker was read before the document).
    /// </summary>
    private readonly ConcurrentDictionary<string, (long Listing, RegisteredModel? Model)> _models = new(StringComparer.Ordinal);

    /// <summary>Where a page of a version search stopped: the last version's sort values, model and number.</summary>
    private sealed record VersionCursor(ImmutableArray<SearchValue> Keys, string Model, int Version);

    private sealed record ModelCursor(ImmutableArray<SearchValue> Keys, string Model);

    /// <summary>What a version search's page tokens are bound to.</summary>
    private sealed record VersionQuery(VersionFilter Filter, string Order);

    private sealed record ModelQuery(string Filter, string Order);

    /// <summary>A version that matched the filter in the index, with its sort values.</summary>
    private sealed record Candidate(VersionIndexEntry Entry, ImmutableArray<SearchValue> Keys);

    /// <summary>Registered models in name order; the caller has validated the page size.</summary>
    public async Task<Page<RegisteredModel>> ListModelsAsync(int pageSize, string? pageToken, CancellationToken cancellationToken)
    {
        const string query = "models";
        var after = PageTokens.Decode<string>(pageToken, query);
        var names = (await store.ListChildFoldersAsync(RegistryLayout.ModelsRoot, cancellationToken))
            .Where(name => after is null || string.CompareOrdinal(name, after) > 0)
            .ToList();

        var page = new List<RegisteredModel>(pageSize);
        var scanned = 0;
        foreach (var batch in names.Chunk(options.ListReadConcurrency))
        {
            var read = await Task.WhenAll(batch.Select(name => models.TryReadAsync(name, cancellationToken)));
            foreach (var model in read)
            {
                scanned++;
                // A folder without model.json is a model being deleted; skip it.
                if (model is null)
                    continue;

                page.Add(model.Value);
                if (page.Count == pageSize)
                    return new Page<RegisteredModel>(page, scanned < names.Count ? PageTokens.Encode(model.Value.Name, query) : null);
            }
        }

        return new Page<RegisteredModel>(page, null);
    }

    /// <summary>Resolves a version by number, alias, or the newest READY one (NAME alone or NAME/latest).</summary>
    public async Task<ModelVersion> GetVersionAsync(ModelRef reference, CancellationToken cancellationToken)
    {
        var name = reference.Name;
        if (reference.Version is { } requested)
        {
            // Both documents are needed (aliases live in model.json); fetch them together.
            var slot = new VersionSlot(name, requested);
            var modelRead = models.ReadAsync(name, cancellationToken);
            var versionRead = store.ReadAsync<ModelVersion>(slot.Document, cancellationToken);
            await Task.WhenAll(modelRead, versionRead);
            var found = await versionRead ?? throw slot.NotFound();
            var current = await expiry.ExpireIfStaleAsync(found.Value, cancellationToken);
            return WithAliases(current, (await modelRead).Value);
        }

        var model = (await models.ReadAsync(name, cancellationToken)).Value;
        if (reference.Alias is { } alias)
        {
            if (!model.Aliases.TryGetValue(alias, out var target))
            {
                throw new IfcbException(ErrorKind.NotFound,
                    $"Model '{name}' has no alias '@{alias}'; set it first " +
                    $"(aliases: {string.Join(", ", model.Aliases.Keys.Select(a => "@" + a))}).");
            }

            var slot = new VersionSlot(name, target);
            var aliased = await store.ReadAsync<ModelVersion>(slot.Document, cancellationToken) ?? throw slot.NotFound();
            return WithAliases(aliased.Value, model);
        }

        var numbers = await store.VersionNumbersAsync(name, cancellationToken);
        for (var i = numbers.Count - 1; i >= 0; i--)
        {
            var candidate = await store.ReadAsync<ModelVersion>(RegistryLayout.VersionDocument(name, numbers[i]), cancellationToken);
            if (candidate?.Value.Status == ModelVersionStatus.Ready)
                return WithAliases(candidate.Value, model);
        }

        throw new IfcbException(ErrorKind.NotFound, $"Model '{name}' has no READY version yet; register one first.");
    }

    /// <summary>
    /// Versions matching <paramref name="filter"/> in <paramref name="order"/> (ties by model name, then version number);
    /// the caller has validated the filter and page size. Reads one search index per model (unchanged ones come from
    /// memory, see <see cref="SearchIndex"/>), then only the documents of the versions on the page.
    /// </summary>
    /// <remarks>
    /// The page token holds the sort values of the last version considered (keyset paging), so pages stay consistent while
    /// versions are registered or deleted: nothing is returned twice, and nothing that existed when the search started
    /// and kept its sort values is skipped. A version whose document no longer matches when it is read is left out, so a
    /// page may hold fewer than <paramref name="pageSize"/> versions while more follow.
    /// </remarks>
    public async Task<Page<ModelVersion>> SearchVersionsAsync(
        VersionFilter filter, SearchOrder order, int pageSize, string? pageToken, CancellationToken cancellationToken)
    {
        var query = PageTokens.QueryFingerprint(new VersionQuery(filter, order.ToString()));
        var resume = PageTokens.Decode<VersionCursor>(pageToken, query);

        IReadOnlyList<(string Name, ETag? ETag)> scope;
        IndexListing? listing = null;
        if (filter.ModelName is { } only)
        {
            _ = await models.ReadAsync(only, cancellationToken); // NotFound when the named model does not exist
            scope = [(only, null)];
        }
        else
        {
            listing = await index.ListAsync(cancellationToken);
            scope = [.. listing.Indexes.Where(m => filter.AdmitsModelName(m.Key)).Select(m => (m.Key, (ETag?)m.Value))];
        }

        var candidates = new List<Candidate>();
        foreach (var batch in scope.Chunk(options.ListReadConcurrency))
        {
            var entries = await Task.WhenAll(batch.Select(model => CurrentEntriesAsync(model.Name, model.ETag, cancellationToken)));
            candidates.AddRange(entries.SelectMany(e => e).Where(filter.Matches).Select(e => new Candidate(e, order.ValuesOf(e.ValueOf))));
        }

        int Compare(Candidate a, Candidate b)
        {
            var byKeys = order.Compare(a.Keys, b.Keys);
            if (byKeys != 0)
                return byKeys;

            var byName = string.CompareOrdinal(a.Entry.ModelName, b.Entry.ModelName);
            return byName != 0 ? byName : a.Entry.Version.CompareTo(b.Entry.Version);
        }

        candidates.Sort(Compare);
        var remaining = resume is null
            ? candidates
            : candidates.Where(c => Compare(c, new Candidate(CursorEntry(resume), resume.Keys)) > 0).ToList();
        var selected = remaining.Take(pageSize).ToList();

        // The page's documents (unless this process holds the very version the index names) and models, in one pool.
        var documents = new Stored<ModelVersion>?[selected.Count];
        var owners = selected.Select(c => c.Entry.ModelName).Distinct().ToDictionary(name => name, _ => (RegisteredModel?)null);
        var reads = Enumerable.Range(0, selected.Count)
            .Where(i => !TryCachedDocument(selected[i].Entry, out documents[i]))
            .Select(i => (Func<CancellationToken, Task>)(async token => documents[i] = await ReadDocumentAsync(selected[i].Entry, token)))
            .Concat(owners.Keys.ToList().Select(name => (Func<CancellationToken, Task>)(async token =>
            {
                var model = await ModelAsync(name, listing, token);
                lock (owners)
                    owners[name] = model;
            })));
        var pool = new ParallelOptions { MaxDegreeOfParallelism = options.ListReadConcurrency, CancellationToken = cancellationToken };
        await Parallel.ForEachAsync(reads, pool, async (read, token) => await read(token));

        var page = new List<ModelVersion>(selected.Count);
        foreach (var (document, i) in documents.Select((d, i) => (d, i)))
        {
            // Gone since the index was read, or its model is (being) deleted: leave it out.
            if (document is null || owners[selected[i].Entry.ModelName] is not { } owner)
                continue;

            var version = await expiry.ExpireIfStaleAsync(document.Value, cancellationToken);
            if (filter.Matches(version))
                page.Add(WithAliases(version, owner));
        }

        var more = remaining.Count > selected.Count;
        return new Page<ModelVersion>(page, more
            ? PageTokens.Encode(new VersionCursor(selected[^1].Keys, selected[^1].Entry.ModelName, selected[^1].Entry.Version), query)
            : null);
    }

    /// <summary>
    /// Registered models matching <paramref name="filter"/> in <paramref name="order"/> (ties by name), keyset-paged like
    /// <see cref="SearchVersionsAsync"/>. Model documents are small and one per model, so each search reads those whose
    /// name can match.
    /// </summary>
    public async Task<Page<RegisteredModel>> SearchModelsAsync(
        SearchFilter filter, SearchOrder order, int pageSize, string? pageToken, CancellationToken cancellationToken)
    {
        var query = PageTokens.QueryFingerprint(new ModelQuery(filter.ToString(), order.ToString()));
        var resume = PageTokens.Decode<ModelCursor>(pageToken, query);
        var listing = await index.ListAsync(cancellationToken);
        var names = listing.Indexes.Keys.Where(filter.AdmitsModelName).ToList();

        var candidates = new List<(RegisteredModel Model, ImmutableArray<SearchValue> Keys)>();
        foreach (var batch in names.Chunk(options.ListReadConcurrency))
        {
            var read = await Task.WhenAll(batch.Select(name => ModelAsync(name, listing, cancellationToken)));
            candidates.AddRange(read.OfType<RegisteredModel>()
                .Where(m => filter.Matches(key => ModelValue(m, key)))
                .Select(m => (m, order.ValuesOf(key => ModelValue(m, key)))));
        }

        int Compare(ImmutableArray<SearchValue> aKeys, string aName, ImmutableArray<SearchValue> bKeys, string bName)
        {
            var byKeys = order.Compare(aKeys, bKeys);
            return byKeys != 0 ? byKeys : string.CompareOrdinal(aName, bName);
        }

        candidates.Sort((a, b) => Compare(a.Keys, a.Model.Name, b.Keys, b.Model.Name));
        var remaining = resume is null
            ? candidates
            : candidates.Where(c => Compare(c.Keys, c.Model.Name, resume.Keys, resume.Model) > 0).ToList();
        var selected = remaining.Take(pageSize).ToList();
        var more = remaining.Count > selected.Count;
        return new Page<RegisteredModel>([.. selected.Select(c => c.Model)],
            more ? PageTokens.Encode(new ModelCursor(selected[^1].Keys, selected[^1].Model.Name), query) : null);
    }

    /// <summary>
    /// A usable model document (null when missing, renamed or being renamed), reused from an earlier search under the same
    /// <paramref name="listing"/> (see <see cref="_models"/>), else read; without a listing, always read.
    /// </summary>
    private async Task<RegisteredModel?> ModelAsync(string name, IndexListing? listing, CancellationToken cancellationToken)
    {
        if (listing is not null && _models.TryGetValue(name, out var cached) && cached.Listing == listing.Id)
            return cached.Model;

        var model = (await models.TryReadAsync(name, cancellationToken))?.Value;
        if (listing is not null)
        {
            // Bounded like the version documents: past the limit the cache starts over.
            if (_models.Count >= MaxCachedDocuments)
                _models.Clear();
            _models[name] = (listing.Id, model);
        }

        return model;
    }

    private bool TryCachedDocument(VersionIndexEntry entry, out Stored<ModelVersion>? document)
    {
        document = entry.DocumentETag is { } etag && _documents.TryGetValue((entry.ModelName, entry.Version), out var cached)
            && cached.ETag.ToString() == etag
            ? cached
            : null;
        return document is not null;
    }

    private async Task<Stored<ModelVersion>?> ReadDocumentAsync(VersionIndexEntry entry, CancellationToken cancellationToken)
    {
        var document = await store.ReadAsync<ModelVersion>(RegistryLayout.VersionDocument(entry.ModelName, entry.Version),
            cancellationToken);
        if (document is not null)
        {
            // Bounded: past the limit the cache starts over (it only saves reads; a miss reads the document).
            if (_documents.Count >= MaxCachedDocuments)
                _documents.Clear();
            _documents[(entry.ModelName, entry.Version)] = document;
        }

        return document;
    }

    /// <summary>Every version of one model as the search index has it now, with abandoned PENDING ones expired.</summary>
    private async Task<IReadOnlyList<VersionIndexEntry>> CurrentEntriesAsync(string modelName, ETag? listedETag,
        CancellationToken cancellationToken)
    {
        var entries = await index.CurrentEntriesAsync(modelName, listedETag, cancellationToken);
        if (!entries.Any(e => expiry.IsStale(e.Status, e.CreatedAt)))
            return entries;

        var current = new List<VersionIndexEntry>(entries.Count);
        foreach (var entry in entries)
        {
            if (!expiry.IsStale(entry.Status, entry.CreatedAt))
            {
                current.Add(entry);
                continue;
            }

            var document = await store.ReadAsync<ModelVersion>(RegistryLayout.VersionDocument(modelName, entry.Version), cancellationToken);
            if (document is not null)
                current.Add(VersionIndexEntry.Of(await expiry.ExpireIfStaleAsync(document.Value, cancellationToken)));
        }

        return current;
    }

    private static SearchValue ModelValue(RegisteredModel model, SearchKey key) => key.Kind switch
    {
        SearchKeyKind.Name => SearchValue.Of(model.Name),
        SearchKeyKind.CreationTime => SearchValue.Of(model.CreatedAt),
        SearchKeyKind.LastUpdatedTime => SearchValue.Of(model.UpdatedAt),
        SearchKeyKind.Tag => model.Tags.TryGetValue(key.Key!, out var tag) ? SearchValue.Of(tag) : SearchValue.Missing,
        _ => SearchValue.Missing,
    };

    /// <summary>A stand-in entry holding a cursor's model and version, for comparing candidates with where a page stopped.</summary>
    private static VersionIndexEntry CursorEntry(VersionCursor cursor) => new()
    {
        ModelName = cursor.Model, Version = cursor.Version, Status = ModelVersionStatus.Ready,
        CreatedAt = DateTimeOffset.UnixEpoch, UpdatedAt = DateTimeOffset.UnixEpoch,
    };

    /// <summary>The version with the aliases that point at it, read from model.json (none if the model is gone).</summary>
    public async Task<ModelVersion> WithAliasesAsync(ModelVersion version, CancellationToken cancellationToken)
    {
        var model = await models.TryReadAsync(version.ModelName, cancellationToken);
        return model is null ? version : WithAliases(version, model.Value);
    }

    private static ModelVersion WithAliases(ModelVersion version, RegisteredModel model) =>
        version with { Aliases = [.. model.Aliases.Where(a => a.Value == version.Version).Select(a => a.Key)] };
}
