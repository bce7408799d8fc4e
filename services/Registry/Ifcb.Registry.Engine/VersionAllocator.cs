using System.Collections.Concurrent;
using Ifcb.Platform;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>
/// Hands out version numbers: claims the next free number by creating its version.json with If-None-Match. A taken
/// slot means another registration got that number, so it tries the next: numbers come out dense and unique, and a
/// crash after the claim leaves a PENDING version rather than a gap. Within this process, registrations of one model
/// take turns (a gate) and remember the last number, so concurrent callers do not all probe the same slots; across
/// processes the If-None-Match create alone keeps numbers unique.
/// </summary>
internal sealed class VersionAllocator(BlobDocumentStore store, RegistryOptions options, ModelDocuments models, SearchIndex index)
{
    private readonly ConcurrentDictionary<string, AllocationState> _allocations = new(StringComparer.Ordinal);

    /// <summary>
    /// Creates the version <paramref name="draft"/> makes for the next free number, and raises model.json's counter to it.
    /// The creation is announced to the model's search index (see <see cref="SearchIndex.TrackAsync{T}"/>).
    /// </summary>
    public Task<Stored<ModelVersion>> AllocateAsync(
        RegisteredModel model, Func<int, ModelVersion> draft, string actor, CancellationToken cancellationToken) =>
        index.TrackAsync(model.Name, null, () => AllocateUntrackedAsync(model, draft, actor, cancellationToken),
            created => created.Value.Version, cancellationToken);

    private async Task<Stored<ModelVersion>> AllocateUntrackedAsync(
        RegisteredModel model, Func<int, ModelVersion> draft, string actor, CancellationToken cancellationToken)
    {
        var state = _allocations.GetOrAdd(model.Name, _ => new AllocationState());
        await state.Gate.WaitAsync(cancellationToken);
        try
        {
            // A model deleted and created again under the same name starts over; the remembered number is stale.
            if (state.ModelCreatedAt != model.CreatedAt)
            {
                state.ModelCreatedAt = model.CreatedAt;
                state.LastAllocated = 0;
            }

            var start = Math.Max(model.LatestVersion, state.LastAllocated);
            for (var probe = 1; probe <= options.MaxVersionAllocationProbes; probe++)
            {
                var candidate = start + probe;
                if (candidate > RegistryValidation.MaxVersionNumber)
                {
                    throw new IfcbException(ErrorKind.ResourceExhausted,
                        $"Model '{model.Name}' has used all {RegistryValidation.MaxVersionNumber} version numbers; " +
                        "register under a new model name.");
                }

                var version = draft(candidate);
                var document = RegistryLayout.VersionDocument(model.Name, candidate);
                if (await store.TryCreateAsync(document, version, cancellationToken) is { } etag)
                {
                    state.LastAllocated = candidate;
                    try
                    {
                        // Inside the gate, so this process's registrations never race each other on model.json.
                        await RaiseLatestVersionAsync(model.Name, candidate, actor, cancellationToken);
                    }
                    catch (IfcbException e) when (e.Kind == ErrorKind.NotFound)
                    {
                        // The model was deleted or renamed since it was read: take the version back (a rename that copied it
                        // already recorded it FAILED under the new name).
                        await store.DeleteAsync(document, CancellationToken.None, etag);
                        throw;
                    }

                    return new Stored<ModelVersion>(version, etag);
                }
            }

            throw new IfcbException(ErrorKind.Aborted,
                $"Could not allocate a version of '{model.Name}' after {options.MaxVersionAllocationProbes} taken slots; " +
                "retry the registration.");
        }
        finally
        {
            state.Gate.Release();
        }
    }

    /// <summary>
    /// Keeps model.json's latest-version counter up to date. It is only the starting point for allocation (the
    /// If-None-Match create is what makes numbers unique), so losing this race to a higher number is fine.
    /// </summary>
    private async Task RaiseLatestVersionAsync(string modelName, int version, string actor, CancellationToken cancellationToken)
    {
        try
        {
            await models.UpdateAsync(modelName, actor,
                model => model.LatestVersion >= version ? null : model with { LatestVersion = version }, cancellationToken);
        }
        catch (IfcbException e) when (e.Kind == ErrorKind.Aborted)
        {
            // Heavy contention: a later registration or delete raises it; allocation probes past a stale value.
        }
    }

    /// <summary>Per-model allocation turn-taking within this process (see <see cref="AllocateAsync"/>).</summary>
    private sealed class AllocationState
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);

        public DateTimeOffset ModelCreatedAt { get; set; }

        public int LastAllocated { get; set; }
    }
}
