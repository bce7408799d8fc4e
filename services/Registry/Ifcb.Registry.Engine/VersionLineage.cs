using System.Globalization;
using Azure.Storage.Blobs;
using Ifcb.Contracts;
using Ifcb.Platform;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>A platform job that used a version: a RUN (<c>run</c>) or an evaluation (<c>evaluate</c>).</summary>
public sealed record VersionUse(string JobId, string Kind, DateTimeOffset At);

/// <summary>A version fine-tuned from another (its <see cref="VersionSource.ParentVersion"/>), as the parent records it.</summary>
public sealed record VersionChild(string Version, DateTimeOffset At);

/// <summary>A version's lineage both ways: where it came from (on the version itself), what came from it and what used it.</summary>
/// <param name="UsesTotal">All recorded uses; <paramref name="Uses"/> holds the newest <see cref="VersionLineage.MaxUsesListed"/>.</param>
public sealed record Lineage(ModelVersion Version, IReadOnlyList<VersionChild> Children, IReadOnlyList<VersionUse> Uses, int UsesTotal);

/// <summary>
/// Lineage records kept beside a version: <c>models/{name}/versions/{0000003}/uses/{job id}.json</c> for every platform
/// job that used it and <c>…/children/{name}@{version}.json</c> for every version fine-tuned from it. Written once per job or
/// child (a redelivered event writes the same record again); deleted with the version (<see cref="Deletions"/>). Where a
/// version came from (training job, dataset fingerprint, parent) is on the version document itself.
/// </summary>
public sealed class VersionLineage(BlobContainerClient container, ModelRegistry registry, RegistryOptions? options = null)
{
    /// <summary>How many uses <see cref="GetAsync"/> lists (the newest); the total is always counted.</summary>
    public const int MaxUsesListed = 100;

    private readonly BlobDocumentStore store = RegistryStore.Create(container, options ?? new RegistryOptions());

    /// <summary>Records that job <paramref name="use"/> used <paramref name="version"/> (NotFound if the version is gone).</summary>
    public async Task RecordUseAsync(ModelRef version, VersionUse use, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(use);
        Named(() => ResourceName.ValidateModelName(use.JobId, "job id"));
        if (use.Kind is not ("run" or "evaluate"))
            throw IfcbException.InvalidArgument($"A use is a run or an evaluate, not '{use.Kind}'.");
        var resolved = await registry.GetVersionAsync(version, cancellationToken);
        await store.PutAsync(RegistryLayout.Use(resolved.ModelName, resolved.Version, use.JobId), use, cancellationToken);
    }

    /// <summary>Records on <paramref name="parent"/> that <paramref name="child"/> (NAME/VERSION) was fine-tuned from it.</summary>
    public async Task RecordChildAsync(ModelRef parent, ModelRef child, DateTimeOffset at, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(child);
        if (child.Version is not { } childVersion)
            throw IfcbException.InvalidArgument($"A child is one version (NAME/VERSION), not '{child}'.");
        var resolved = await registry.GetVersionAsync(parent, cancellationToken);
        await store.PutAsync(RegistryLayout.Child(resolved.ModelName, resolved.Version, child.Name, childVersion),
            new VersionChild($"{child.Name}/{childVersion.ToString(CultureInfo.InvariantCulture)}", at), cancellationToken);
    }

    /// <summary>The version with its children and its newest uses.</summary>
    public async Task<Lineage> GetAsync(ModelRef reference, CancellationToken cancellationToken = default)
    {
        var version = await registry.GetVersionAsync(reference, cancellationToken);
        var children = await store.ReadAllAsync<VersionChild>(RegistryLayout.ChildrenPrefix(version.ModelName, version.Version),
            cancellationToken);
        var uses = await store.ReadAllAsync<VersionUse>(RegistryLayout.UsesPrefix(version.ModelName, version.Version), cancellationToken);
        return new Lineage(version, [.. children.OrderBy(c => c.At)],
            [.. uses.OrderByDescending(u => u.At).Take(MaxUsesListed)], uses.Count);
    }

    /// <summary>A name check's ArgumentException as the registry's InvalidArgument, as every engine refusal is.</summary>
    internal static void Named(Action check)
    {
        try
        {
            check();
        }
        catch (ArgumentException e)
        {
            throw IfcbException.InvalidArgument(e.Message);
        }
    }
}

/// <summary>Reads for the version-folder records (<see cref="VersionLineage"/>, <see cref="VersionEvaluations"/>).</summary>
internal static class DocumentListing
{
    /// <summary>Every document under <paramref name="prefix"/> (one that vanished between listing and reading is skipped).</summary>
    public static async Task<List<T>> ReadAllAsync<T>(this BlobDocumentStore store, string prefix, CancellationToken cancellationToken)
    {
        var items = new List<T>();
        foreach (var blob in await store.ListBlobNamesAsync(prefix, cancellationToken))
        {
            if (await store.ReadAsync<T>(blob, cancellationToken) is { } stored)
                items.Add(stored.Value);
        }
        return items;
    }
}
