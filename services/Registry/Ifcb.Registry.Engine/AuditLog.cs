using System.Collections.Immutable;
using System.Globalization;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>
/// The append-only audit log (<c>audit/{model}/…</c>, see <see cref="RegistryLayout"/>): appends one entry per change
/// and pages through a model's history, oldest first.
/// </summary>
internal sealed class AuditLog(BlobDocumentStore store, RegistryOptions options, TimeProvider time)
{
    /// <summary>Appends an entry for a change that wrote model.json; it carries the revision that write produced.</summary>
    public Task AppendAsync(
        RegisteredModel model, string actor, AuditAction action, int? version, (string Key, string Value)[] details,
        CancellationToken cancellationToken) =>
        AppendAsync(model.Name, actor, action, version, model.Revision, details, cancellationToken);

    public async Task AppendAsync(
        string modelName, string actor, AuditAction action, int? version, long? modelRevision, (string Key, string Value)[] details,
        CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var entry = new AuditEntry
        {
            ModelName = modelName, Timestamp = now, Actor = actor, Action = action, Version = version, ModelRevision = modelRevision,
            Details = details.ToImmutableSortedDictionary(d => d.Key, d => d.Value, StringComparer.Ordinal),
        };
        // A fresh guid per entry makes name collisions impossible; If-None-Match keeps the log append-only anyway.
        await store.TryCreateAsync(RegistryLayout.AuditEntry(modelName, now), entry, cancellationToken);
    }

    /// <summary>The details of an alias change: the alias and where it pointed before and after (empty = unset).</summary>
    public static (string Key, string Value)[] AliasMove(string alias, int? previous, int? version) =>
        [("alias", alias), ("previous_version", Number(previous)), ("new_version", Number(version))];

    /// <summary>One page of the model's entries, oldest first; the caller has validated the name and page size.</summary>
    public async Task<Page<AuditEntry>> HistoryAsync(
        string modelName, int pageSize, string? pageToken, CancellationToken cancellationToken)
    {
        var query = "audit:" + modelName;
        var after = PageTokens.Decode<string>(pageToken, query);
        var names = (await store.ListBlobNamesAsync(RegistryLayout.AuditPrefix(modelName), cancellationToken))
            .Where(name => after is null || string.CompareOrdinal(name, after) > 0)
            .ToList();
        var selected = names.Take(pageSize).ToList();
        var entries = new List<AuditEntry>(selected.Count);
        foreach (var batch in selected.Chunk(options.ListReadConcurrency))
        {
            var read = await Task.WhenAll(batch.Select(name => store.ReadAsync<AuditEntry>(name, cancellationToken)));
            entries.AddRange(read.Where(entry => entry is not null).Select(entry => entry!.Value));
        }

        return new Page<AuditEntry>(entries, names.Count > selected.Count ? PageTokens.Encode(selected[^1], query) : null);
    }

    private static string Number(int? version) => version?.ToString(CultureInfo.InvariantCulture) ?? "";
}
