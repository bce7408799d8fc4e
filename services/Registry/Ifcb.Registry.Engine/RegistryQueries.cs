using Ifcb.Contracts;
using Ifcb.Platform;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>
/// The registry's reads: lists models, resolves a version reference, searches versions. Every version comes back with
/// its aliases (they live in model.json), and an abandoned PENDING version is expired before it is returned.
/// </summary>
internal sealed class RegistryQueries(BlobDocumentStore store, RegistryOptions options, ModelDocuments models, PendingExpiry expiry)
{
    private sealed record VersionCursor(string Model, int Version);

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

        var numbers = await ListVersionNumbersAsync(name, cancellationToken);
        for (var i = numbers.Count - 1; i >= 0; i--)
        {
            var candidate = await store.ReadAsync<ModelVersion>(RegistryLayout.VersionDocument(name, numbers[i]), cancellationToken);
            if (candidate?.Value.Status == ModelVersionStatus.Ready)
                return WithAliases(candidate.Value, model);
        }

        throw new IfcbException(ErrorKind.NotFound, $"Model '{name}' has no READY version yet; register one first.");
    }

    /// <summary>
    /// Versions matching <paramref name="filter"/>, ordered by model name then version number; the caller has validated
    /// the filter and page size.
    /// </summary>
    public async Task<Page<ModelVersion>> SearchVersionsAsync(
        VersionFilter filter, int pageSize, string? pageToken, CancellationToken cancellationToken)
    {
        var query = PageTokens.QueryFingerprint(filter);
        var resume = PageTokens.Decode<VersionCursor>(pageToken, query);

        IReadOnlyList<string> names = filter.ModelName is { } only
            ? [only]
            : await store.ListChildFoldersAsync(RegistryLayout.ModelsRoot, cancellationToken);
        names = names.Where(m => resume is null || string.CompareOrdinal(m, resume.Model) >= 0).ToList();

        var page = new List<ModelVersion>(pageSize);
        for (var m = 0; m < names.Count; m++)
        {
            var name = names[m];
            var model = await models.TryReadAsync(name, cancellationToken);
            if (model is null)
            {
                if (filter.ModelName is not null)
                    throw ModelDocuments.NotFound(name);

                continue;
            }

            var numbers = (await ListVersionNumbersAsync(name, cancellationToken))
                .Where(v => resume is null || name != resume.Model || v > resume.Version)
                .ToList();
            var scanned = 0;
            foreach (var batch in numbers.Chunk(options.ListReadConcurrency))
            {
                var versions = await Task.WhenAll(batch.Select(v =>
                    store.ReadAsync<ModelVersion>(RegistryLayout.VersionDocument(name, v), cancellationToken)));
                foreach (var stored in versions)
                {
                    scanned++;
                    if (stored is null)
                        continue;

                    var version = await expiry.ExpireIfStaleAsync(stored.Value, cancellationToken);
                    if (!filter.Matches(version))
                        continue;

                    page.Add(WithAliases(version, model.Value));
                    if (page.Count == pageSize)
                    {
                        var more = scanned < numbers.Count || m < names.Count - 1;
                        return new Page<ModelVersion>(page,
                            more ? PageTokens.Encode(new VersionCursor(name, version.Version), query) : null);
                    }
                }
            }
        }

        return new Page<ModelVersion>(page, null);
    }

    /// <summary>The numbers of the model's version documents, ascending.</summary>
    public async Task<List<int>> ListVersionNumbersAsync(string modelName, CancellationToken cancellationToken)
    {
        var names = await store.ListBlobNamesAsync(RegistryLayout.VersionsPrefix(modelName), cancellationToken);
        return names.Select(name => RegistryLayout.VersionFromDocument(modelName, name)).OfType<int>().Order().ToList();
    }

    /// <summary>The version with the aliases that point at it, read from model.json (none if the model is gone).</summary>
    public async Task<ModelVersion> WithAliasesAsync(ModelVersion version, CancellationToken cancellationToken)
    {
        var model = await models.TryReadAsync(version.ModelName, cancellationToken);
        return model is null ? version : WithAliases(version, model.Value);
    }

    private static ModelVersion WithAliases(ModelVersion version, RegisteredModel model) =>
        version with { Aliases = [.. model.Aliases.Where(a => a.Value == version.Version).Select(a => a.Key)] };
}
