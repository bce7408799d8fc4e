using Azure;
using Ifcb.Platform;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>
/// The registered models' model.json documents: reads one (NotFound naming the model when it is missing) and
/// read-modify-writes one, stamping the next revision, the time and the actor on every real change. A model renamed away
/// (<see cref="RegisteredModel.RenamedTo"/>) reads as NotFound naming its new name, and one being renamed into
/// (<see cref="RegisteredModel.RenamedFrom"/>) as Aborted until the rename completes; only <see cref="ModelRenames"/>
/// sees them as they are. Every write touches <see cref="SearchChanges"/> before it returns.
/// </summary>
internal sealed class ModelDocuments(BlobDocumentStore store, TimeProvider time, SearchChanges changes)
{
    public static IfcbException NotFound(string name) =>
        new(ErrorKind.NotFound, $"Registered model '{name}' does not exist; create it first.");

    /// <summary>Why a model that is renamed, or being renamed into, cannot be used; null for a usable one.</summary>
    public static IfcbException? Unusable(RegisteredModel model) => model switch
    {
        { RenamedTo: { } to } => new(ErrorKind.NotFound, $"Registered model '{model.Name}' was renamed to '{to}'; use '{to}'."),
        { RenamedFrom: { } from } => new(ErrorKind.Aborted,
            $"Registered model '{model.Name}' is being renamed from '{from}'; retry in a moment (or rename again to finish it)."),
        _ => null,
    };

    /// <summary>Creates model.json unless the model exists; returns null when it does.</summary>
    public async Task<ETag?> TryCreateAsync(RegisteredModel model, CancellationToken cancellationToken)
    {
        try
        {
            return await store.TryCreateAsync(RegistryLayout.ModelDocument(model.Name), model, cancellationToken);
        }
        finally
        {
            await changes.TouchAsync(); // also after a failure: the write may have landed
        }
    }

    /// <summary>The model, or null when there is none (or it is being deleted, renamed away or renamed into).</summary>
    public async Task<Stored<RegisteredModel>?> TryReadAsync(string name, CancellationToken cancellationToken) =>
        await TryReadRawAsync(name, cancellationToken) is { } model && Unusable(model.Value) is null ? model : null;

    /// <summary>model.json as it is, renames included.</summary>
    public Task<Stored<RegisteredModel>?> TryReadRawAsync(string name, CancellationToken cancellationToken) =>
        store.ReadAsync<RegisteredModel>(RegistryLayout.ModelDocument(name), cancellationToken);

    public async Task<Stored<RegisteredModel>> ReadAsync(string name, CancellationToken cancellationToken)
    {
        var model = await TryReadRawAsync(name, cancellationToken) ?? throw NotFound(name);
        return Unusable(model.Value) is { } unusable ? throw unusable : model;
    }

    /// <summary>Read-modify-write of model.json that also stamps revision, time and actor on a real change.</summary>
    public Task<Updated<RegisteredModel>> UpdateAsync(
        string name, string actor, Func<RegisteredModel, RegisteredModel?> change, CancellationToken cancellationToken) =>
        UpdateAsync(name, actor, model => Task.FromResult(change(model)), cancellationToken);

    /// <inheritdoc cref="UpdateAsync(string, string, Func{RegisteredModel, RegisteredModel?}, CancellationToken)"/>
    public Task<Updated<RegisteredModel>> UpdateAsync(
        string name, string actor, Func<RegisteredModel, Task<RegisteredModel?>> change, CancellationToken cancellationToken) =>
        UpdateRawAsync(name, actor, model => Unusable(model) is { } unusable ? throw unusable : change(model), cancellationToken);

    /// <summary>
    /// As <see cref="UpdateAsync(string, string, Func{RegisteredModel, RegisteredModel?}, CancellationToken)"/>, renames included.
    /// </summary>
    public async Task<Updated<RegisteredModel>> UpdateRawAsync(
        string name, string actor, Func<RegisteredModel, Task<RegisteredModel?>> change, CancellationToken cancellationToken)
    {
        var wrote = true; // unless the update says it changed nothing (a failure may have written)
        try
        {
            var updated = await store.UpdateAsync<RegisteredModel>(RegistryLayout.ModelDocument(name), async model =>
                await change(model) is { } changed
                    ? changed with { Revision = model.Revision + 1, UpdatedAt = time.GetUtcNow(), UpdatedBy = actor }
                    : null,
                () => NotFound(name), cancellationToken).Updated();
            wrote = updated.Changed;
            return updated;
        }
        catch (IfcbException e) when (e.Kind is not (ErrorKind.Unavailable or ErrorKind.DeadlineExceeded))
        {
            wrote = false; // refused (missing, renamed, a change the caller refused, lost races): nothing was written
            throw;
        }
        finally
        {
            if (wrote)
                await changes.TouchAsync();
        }
    }
}
