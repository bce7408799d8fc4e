using Azure;
using Ifcb.Platform;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>
/// The registered models' model.json documents: reads one (NotFound naming the model when it is missing) and
/// read-modify-writes one, stamping the next revision, the time and the actor on every real change.
/// </summary>
internal sealed class ModelDocuments(BlobDocumentStore store, TimeProvider time)
{
    public static IfcbException NotFound(string name) =>
        new(ErrorKind.NotFound, $"Registered model '{name}' does not exist; create it first.");

    /// <summary>Creates model.json unless the model exists; returns null when it does.</summary>
    public Task<ETag?> TryCreateAsync(RegisteredModel model, CancellationToken cancellationToken) =>
        store.TryCreateAsync(RegistryLayout.ModelDocument(model.Name), model, cancellationToken);

    /// <summary>The model, or null when there is none (or it is being deleted).</summary>
    public Task<Stored<RegisteredModel>?> TryReadAsync(string name, CancellationToken cancellationToken) =>
        store.ReadAsync<RegisteredModel>(RegistryLayout.ModelDocument(name), cancellationToken);

    public async Task<Stored<RegisteredModel>> ReadAsync(string name, CancellationToken cancellationToken) =>
        await TryReadAsync(name, cancellationToken) ?? throw NotFound(name);

    /// <summary>Read-modify-write of model.json that also stamps revision, time and actor on a real change.</summary>
    public Task<Updated<RegisteredModel>> UpdateAsync(
        string name, string actor, Func<RegisteredModel, RegisteredModel?> change, CancellationToken cancellationToken) =>
        UpdateAsync(name, actor, model => Task.FromResult(change(model)), cancellationToken);

    /// <inheritdoc cref="UpdateAsync(string, string, Func{RegisteredModel, RegisteredModel?}, CancellationToken)"/>
    public Task<Updated<RegisteredModel>> UpdateAsync(
        string name, string actor, Func<RegisteredModel, Task<RegisteredModel?>> change, CancellationToken cancellationToken) =>
        store.UpdateAsync<RegisteredModel>(RegistryLayout.ModelDocument(name), async model =>
            await change(model) is { } changed
                ? changed with { Revision = model.Revision + 1, UpdatedAt = time.GetUtcNow(), UpdatedBy = actor }
                : null,
            () => NotFound(name), cancellationToken).Updated();
}
