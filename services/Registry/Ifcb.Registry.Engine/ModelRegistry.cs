using System.Collections.Immutable;
using Azure.Storage.Blobs;
using Ifcb.Contracts;
using Ifcb.Platform;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>
/// The model registry (MLflow Model Registry semantics: versions, @aliases, tags, lineage, status, search), kept
/// entirely in one blob container; see <see cref="RegistryLayout"/> for the blob names. Safe for many concurrent
/// callers and processes: every write is ETag-guarded. Every write takes the <c>actor</c> recorded in the audit log.
/// Expected failures throw <see cref="IfcbException"/>; storage outages surface as Azure's RequestFailedException.
/// </summary>
/// <remarks>
/// This class is the facade: it checks every input, then hands the work to parts that each do one job
/// (<see cref="VersionRegistrar"/>, <see cref="Deletions"/>, <see cref="AliasChanges"/>, <see cref="RegistryQueries"/>,
/// <see cref="PendingExpiry"/>, <see cref="CheckpointStore"/>, <see cref="AuditLog"/>); it changes descriptions and tags itself.
/// The audit entry is appended after the change it describes; a crash in between loses that entry but never
/// records a change that did not happen.
/// </remarks>
public sealed class ModelRegistry
{
    private readonly BlobDocumentStore _store;
    private readonly RegistryOptions _options;
    private readonly TimeProvider _time;
    private readonly ModelDocuments _models;
    private readonly AuditLog _audit;
    private readonly PendingExpiry _expiry;
    private readonly RegistryQueries _queries;
    private readonly CheckpointStore _checkpoints;
    private readonly VersionRegistrar _registrar;
    private readonly Deletions _deletions;
    private readonly AliasChanges _aliases;
    private readonly SearchIndex _index;
    private readonly ModelRenames _renames;

    public ModelRegistry(BlobContainerClient container, RegistryOptions? options = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(container);
        _options = options ?? new RegistryOptions();
        _time = timeProvider ?? TimeProvider.System;
        if (_options.PendingTimeout <= _options.UploadTimeout)
        {
            throw new ArgumentException(
                $"RegistryOptions.PendingTimeout ({_options.PendingTimeout}) must be longer than " +
                $"UploadTimeout ({_options.UploadTimeout}): otherwise a version could expire while its upload is still running.",
                nameof(options));
        }

        _store = RegistryStore.Create(container, _options);
        var changes = new SearchChanges(_store);
        _models = new ModelDocuments(_store, _time, changes);
        _audit = new AuditLog(_store, _options, _time);
        _index = new SearchIndex(_store, _options, _time, changes);
        _expiry = new PendingExpiry(_store, _options, _time, _audit, _index);
        _queries = new RegistryQueries(_store, _options, _models, _expiry, _index);
        _checkpoints = new CheckpointStore(container, _options);
        var claims = new IdempotencyClaims(_store, _options, _time, _expiry);
        _registrar = new VersionRegistrar(_store, _options, _time, _models, new VersionAllocator(_store, _options, _models, _index),
            claims, _checkpoints, _audit, _queries, _index);
        _deletions = new Deletions(_store, _options, _models, claims, _audit, _index);
        _aliases = new AliasChanges(_store, _options, _models, _audit);
        _renames = new ModelRenames(_store, _options, _time, _models, _checkpoints, _audit, _index);
    }

    /// <summary>The audit-log actor for changes the registry makes on its own (expiring abandoned versions).</summary>
    public const string SystemActor = "registry";

    // ----- Registered models -----

    public async Task<RegisteredModel> CreateModelAsync(
        string name, string actor, string description = "", IReadOnlyDictionary<string, string>? tags = null,
        CancellationToken cancellationToken = default)
    {
        RegistryValidation.ModelChange(name, actor);
        RegistryValidation.Description(description);
        var initialTags = (tags ?? ImmutableSortedDictionary<string, string>.Empty).ToImmutableSortedDictionary(StringComparer.Ordinal);
        RegistryValidation.Tags(initialTags);

        var now = _time.GetUtcNow();
        var model = new RegisteredModel
        {
            Name = name, Description = description, Tags = initialTags, Revision = 1,
            CreatedAt = now, CreatedBy = actor, UpdatedAt = now, UpdatedBy = actor,
        };
        // The (empty) search index first, so every model this build creates has one; an index left by a deleted model of
        // the same name is kept, as its writers kept it correct (see SearchIndex).
        await _index.CreateAsync(name, cancellationToken);
        if (await _models.TryCreateAsync(model, cancellationToken) is null)
        {
            if ((await _models.TryReadRawAsync(name, cancellationToken))?.Value.RenamedTo is { } renamedTo)
            {
                throw new IfcbException(ErrorKind.FailedPrecondition,
                    $"Registered model '{name}' was renamed to '{renamedTo}'; use '{renamedTo}', or delete '{name}' (its redirect) " +
                    "to reuse the name.");
            }

            throw new IfcbException(ErrorKind.AlreadyExists,
                $"Registered model '{name}' already exists; register a new version of it or choose another name.");
        }

        await _audit.AppendAsync(model, actor, AuditAction.ModelCreated, null, [], cancellationToken);
        return model;
    }

    public async Task<RegisteredModel> GetModelAsync(string name, CancellationToken cancellationToken = default)
    {
        RegistryValidation.ModelName(name);
        return (await _models.ReadAsync(name, cancellationToken)).Value;
    }

    /// <summary>Registered models in name order.</summary>
    public async Task<Page<RegisteredModel>> ListModelsAsync(
        int pageSize = 100, string? pageToken = null, CancellationToken cancellationToken = default)
    {
        RegistryValidation.PageSize(pageSize);
        return await _queries.ListModelsAsync(pageSize, pageToken, cancellationToken);
    }

    public async Task<RegisteredModel> UpdateModelDescriptionAsync(
        string name, string description, string actor, CancellationToken cancellationToken = default)
    {
        RegistryValidation.ModelChange(name, actor);
        RegistryValidation.Description(description);
        var previous = "";
        var updated = await _models.UpdateAsync(name, actor, model =>
        {
            previous = model.Description;
            return model.Description == description ? null : model with { Description = description };
        }, cancellationToken);
        if (updated.Changed)
        {
            await _audit.AppendAsync(updated.Value, actor, AuditAction.ModelUpdated, null,
                [("previous_description", previous), ("description", description)], cancellationToken);
        }

        return updated.Value;
    }

    public async Task<RegisteredModel> SetModelTagAsync(
        string name, string key, string value, string actor, CancellationToken cancellationToken = default)
    {
        RegistryValidation.TagValue(key, value); // null means "delete" below, so refuse it here as before
        return (await ChangeModelTagAsync(name, key, value, actor, cancellationToken)).Value;
    }

    /// <summary>Removes a model tag; removing a tag that is not there is a no-op, so retries are safe.</summary>
    public async Task<RegisteredModel> DeleteModelTagAsync(
        string name, string key, string actor, CancellationToken cancellationToken = default) =>
        (await ChangeModelTagAsync(name, key, null, actor, cancellationToken)).Value;

    /// <summary>
    /// Sets a model tag to <paramref name="value"/>, or removes it when <paramref name="value"/> is null, and says whether
    /// that changed anything (setting the current value or removing an absent tag does not).
    /// </summary>
    public async Task<TagChange<RegisteredModel>> ChangeModelTagAsync(
        string name, string key, string? value, string actor, CancellationToken cancellationToken = default)
    {
        RegistryValidation.ModelChange(name, actor);
        RegistryValidation.TagKey(key);
        if (value is not null)
            RegistryValidation.TagValue(key, value);
        var updated = await _models.UpdateAsync(name, actor, model =>
            (value is null ? TagEdits.Remove(model.Tags, key) : TagEdits.Set(model.Tags, key, value, $"Model '{name}'")) is { } tags
                ? model with { Tags = tags }
                : null,
            cancellationToken);
        if (updated.Changed)
        {
            await _audit.AppendAsync(updated.Value, actor, value is null ? AuditAction.ModelTagDeleted : AuditAction.ModelTagSet, null,
                value is null ? [("key", key)] : [("key", key), ("value", value)], cancellationToken);
        }

        return new TagChange<RegisteredModel>(updated.Value, updated.Changed);
    }

    /// <summary>
    /// Renames a model: its versions (checkpoints included), aliases, tags, idempotency keys and audit history move to
    /// <paramref name="newName"/>, and the old name then answers NotFound naming the new one (until the old name is
    /// deleted, which frees it). Registrations under the old name that were uploading fail (NotFound, naming the new
    /// name) and end FAILED under the new name. AlreadyExists when <paramref name="newName"/> is taken. An interrupted
    /// rename is finished by renaming again (until then both names answer with an error that says so).
    /// </summary>
    public async Task<RegisteredModel> RenameModelAsync(string name, string newName, string actor,
        CancellationToken cancellationToken = default)
    {
        RegistryValidation.ModelChange(name, actor);
        RegistryValidation.ModelName(newName);
        if (name == newName)
            throw IfcbException.InvalidArgument($"Model '{name}' already has that name; give a different new name.");

        return await _renames.RenameAsync(name, newName, actor, cancellationToken);
    }

    /// <summary>
    /// Deletes a registered model. Refused (FailedPrecondition) while it has versions unless <paramref name="force"/>,
    /// which deletes every version, checkpoint and alias with it. The audit history is kept. Returns the model as
    /// it was before deletion (aliases included) and the version numbers deleted with it.
    /// </summary>
    public async Task<ModelDeletion> DeleteModelAsync(string name, string actor, bool force = false,
        CancellationToken cancellationToken = default)
    {
        RegistryValidation.ModelChange(name, actor);
        return await _deletions.DeleteModelAsync(name, actor, force, cancellationToken);
    }

    // ----- Versions -----

    /// <summary>
    /// Registers a new version: allocates the next number (race-free, no gaps), records it PENDING, streams the
    /// checkpoint while verifying its declared sha256 and size, reads its hparams.json back from storage and checks it
    /// against the declared metadata (<see cref="CheckpointConformance"/>), then marks it READY. On any failure the
    /// version ends FAILED with no checkpoint blob, and the error is rethrown (DataLoss for a sha256/size mismatch,
    /// InvalidArgument for a file that is no checkpoint or contradicts its metadata, DeadlineExceeded past
    /// <see cref="RegistryOptions.UploadTimeout"/>). With an idempotency key, a repeat of an earlier registration (even a
    /// concurrent one) returns that version instead. The caller keeps ownership of <paramref name="checkpoint"/>.
    /// </summary>
    public Task<VersionRegistration> RegisterVersionAsync(
        string modelName, NewModelVersion request, Stream checkpoint, string actor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        return RegisterVersionAsync(modelName, request,
            _ => Task.FromResult<CheckpointTransfer>(new StreamedCheckpoint(checkpoint, ownsCheckpoint: false)), actor, cancellationToken);
    }

    /// <summary>
    /// As <see cref="RegisterVersionAsync(string, NewModelVersion, Stream, string, CancellationToken)"/>, but the
    /// checkpoint is opened only when a new version is really needed: a repeat of an idempotency key returns the
    /// existing version without calling <paramref name="openCheckpoint"/> (a redelivered event does not fetch the bytes
    /// again, and does not fail because they were cleaned up meanwhile). The opened stream is disposed here.
    /// </summary>
    public Task<VersionRegistration> RegisterVersionAsync(
        string modelName, NewModelVersion request, Func<CancellationToken, Task<Stream>> openCheckpoint, string actor,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(openCheckpoint);
        return RegisterVersionAsync(modelName, request,
            async token => new StreamedCheckpoint(await openCheckpoint(token), ownsCheckpoint: true), actor, cancellationToken);
    }

    /// <summary>
    /// As <see cref="RegisterVersionAsync(string, NewModelVersion, Stream, string, CancellationToken)"/> (same idempotency,
    /// version allocation, deadline and FAILED-on-any-failure), for a checkpoint that is already a blob, such as a training
    /// job's best checkpoint: the storage service copies <paramref name="source"/> into the version's checkpoint blob, so
    /// the bytes never pass through this process. The source must be in the registry's storage account; its client needs
    /// the account key (a short-lived read SAS is made for the copy) or must be readable by the copy as it is. Then the
    /// size is checked, the sha256 (trusted when the source recorded the same one as it was written, see
    /// <see cref="BlobChecksum"/>; otherwise read once from the copy), and the hparams.json (a few ranged reads).
    /// A source that does not exist is FailedPrecondition and uses no version number; a repeat of an idempotency key
    /// does not look at the source at all.
    /// </summary>
    public Task<VersionRegistration> RegisterVersionFromBlobAsync(
        string modelName, NewModelVersion request, BlobClient source, string actor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(request);
        return RegisterVersionAsync(modelName, request, token => CopiedCheckpoint.OpenAsync(source, request, token), actor,
            cancellationToken);
    }

    private async Task<VersionRegistration> RegisterVersionAsync(string modelName, NewModelVersion request,
        Func<CancellationToken, Task<CheckpointTransfer>> openCheckpoint, string actor, CancellationToken cancellationToken)
    {
        RegistryValidation.ModelChange(modelName, actor);
        RegistryValidation.NewVersion(request, _options.MaxCheckpointBytes);
        return await _registrar.RegisterAsync(modelName, request, openCheckpoint, actor, cancellationToken);
    }

    /// <summary>
    /// The version a failed registration left FAILED, carried by the exception a <c>RegisterVersion*Async</c> threw; null
    /// when the failure came before a version was allocated (or the version could not be marked FAILED).
    /// </summary>
    public static ModelVersion? FailedVersionOf(Exception failure) =>
        failure?.Data[VersionRegistrar.FailedVersionKey] as ModelVersion;

    /// <summary>Resolves a <see cref="ModelRef"/> given as text (InvalidArgument when it is not one).</summary>
    public Task<ModelVersion> GetVersionAsync(string reference, CancellationToken cancellationToken = default) =>
        GetVersionAsync(ModelRef.TryParse(reference, out var parsed, out var error) ? parsed : throw IfcbException.InvalidArgument(error),
            cancellationToken);

    /// <summary>Resolves a version by number, alias, or the newest READY one (NAME alone or NAME/latest).</summary>
    public async Task<ModelVersion> GetVersionAsync(ModelRef reference, CancellationToken cancellationToken = default)
    {
        RegistryValidation.Reference(reference);
        return await _queries.GetVersionAsync(reference, cancellationToken);
    }

    /// <summary>Versions matching <paramref name="filter"/>, ordered by model name then version number; the page size is 1..1000.</summary>
    public Task<Page<ModelVersion>> SearchVersionsAsync(
        VersionFilter filter, int pageSize = 100, string? pageToken = null, CancellationToken cancellationToken = default) =>
        SearchVersionsAsync(filter, SearchOrder.Default, pageSize, pageToken, cancellationToken);

    /// <summary>
    /// Versions matching <paramref name="filter"/> in <paramref name="order"/> (ties, and an empty order, by model name
    /// then version number). A search reads one small index blob per model (or none, when the model's index is unchanged
    /// since this process last read it) and the documents of the versions on the page, never every version document.
    /// Page tokens resume after the last version of the previous page (stable under concurrent registrations).
    /// </summary>
    public async Task<Page<ModelVersion>> SearchVersionsAsync(VersionFilter filter, SearchOrder order, int pageSize = 100,
        string? pageToken = null, CancellationToken cancellationToken = default)
    {
        RegistryValidation.Filter(filter);
        ArgumentNullException.ThrowIfNull(order);
        RegistryValidation.PageSize(pageSize);
        return await _queries.SearchVersionsAsync(filter, order, pageSize, pageToken, cancellationToken);
    }

    /// <summary>
    /// As <see cref="SearchVersionsAsync(VersionFilter, SearchOrder, int, string?, CancellationToken)"/> with a filter and an
    /// ordering in MLflow's grammar (<see cref="SearchFilter"/>, <see cref="SearchOrder"/>); InvalidArgument points at the
    /// offending token.
    /// </summary>
    public Task<Page<ModelVersion>> SearchVersionsAsync(string? filter, string? orderBy, int pageSize = 100, string? pageToken = null,
        CancellationToken cancellationToken = default) =>
        SearchVersionsAsync(new VersionFilter { Expression = SearchFilter.ForVersions(filter) }, SearchOrder.ForVersions(orderBy),
            pageSize, pageToken, cancellationToken);

    /// <summary>
    /// Registered models matching <paramref name="filter"/> (name, tags.K, creation_time, last_updated_time) in
    /// <paramref name="orderBy"/> (name, creation_time, last_updated_time; ties by name). InvalidArgument points at the
    /// offending token of either.
    /// </summary>
    public async Task<Page<RegisteredModel>> SearchModelsAsync(string? filter, string? orderBy, int pageSize = 100,
        string? pageToken = null, CancellationToken cancellationToken = default)
    {
        var parsedFilter = SearchFilter.ForModels(filter);
        var parsedOrder = SearchOrder.ForModels(orderBy);
        RegistryValidation.PageSize(pageSize);
        return await _queries.SearchModelsAsync(parsedFilter, parsedOrder, pageSize, pageToken, cancellationToken);
    }

    public async Task<ModelVersion> SetVersionTagAsync(
        string modelName, int version, string key, string value, string actor, CancellationToken cancellationToken = default)
    {
        RegistryValidation.TagValue(key, value); // null means "delete" below, so refuse it here as before
        return (await ChangeVersionTagAsync(modelName, version, key, value, actor, cancellationToken)).Value;
    }

    /// <summary>
    /// Sets a version tag to <paramref name="value"/>, or removes it when <paramref name="value"/> is null, and says whether
    /// that changed anything (setting the current value or removing an absent tag does not).
    /// </summary>
    public async Task<TagChange<ModelVersion>> ChangeVersionTagAsync(
        string modelName, int version, string key, string? value, string actor, CancellationToken cancellationToken = default)
    {
        RegistryValidation.TagKey(key);
        if (value is not null)
            RegistryValidation.TagValue(key, value);
        var updated = await ChangeVersionAsync(modelName, version, actor, current =>
            (value is null
                ? TagEdits.Remove(current.Tags, key)
                : TagEdits.Set(current.Tags, key, value, $"Version {version} of '{modelName}'")) is { } tags
                ? current with { Tags = tags }
                : null,
            cancellationToken);
        if (updated.Changed)
        {
            await _audit.AppendAsync(modelName, actor, value is null ? AuditAction.VersionTagDeleted : AuditAction.VersionTagSet, version,
                null, value is null ? [("key", key)] : [("key", key), ("value", value)], cancellationToken);
        }

        return new TagChange<ModelVersion>(await _queries.WithAliasesAsync(updated.Value, cancellationToken), updated.Changed);
    }

    /// <summary>
    /// Changes the version's metadata that is not part of its checkpoint's identity (description, metrics, commit and
    /// pipeline URL; arch, classes, img_norm, resize, pretrained, dataset and training job stay as registered). Fields
    /// left null are unchanged; an update that changes nothing writes nothing. Any status; NotFound.
    /// </summary>
    public async Task<ModelVersion> UpdateVersionAsync(string modelName, int version, VersionUpdate update, string actor,
        CancellationToken cancellationToken = default)
    {
        RegistryValidation.Update(update);
        var details = new List<(string Key, string Value)>();
        var updated = await ChangeVersionAsync(modelName, version, actor, current =>
        {
            details.Clear();
            var changed = update.ApplyTo(current, details);
            return details.Count == 0 ? null : changed;
        }, cancellationToken);
        if (updated.Changed)
            await _audit.AppendAsync(modelName, actor, AuditAction.VersionUpdated, version, null, [.. details], cancellationToken);

        return await _queries.WithAliasesAsync(updated.Value, cancellationToken);
    }

    /// <summary>Removes a version tag; removing a tag that is not there is a no-op, so retries are safe.</summary>
    public async Task<ModelVersion> DeleteVersionTagAsync(
        string modelName, int version, string key, string actor, CancellationToken cancellationToken = default) =>
        (await ChangeVersionTagAsync(modelName, version, key, null, actor, cancellationToken)).Value;

    /// <summary>
    /// Deletes a version and its checkpoint. Refused (FailedPrecondition) while an alias points at it unless
    /// <paramref name="force"/>, which removes those aliases first. Its number is never reused. Returns the deleted
    /// version; its <see cref="ModelVersion.Aliases"/> are the aliases removed with it.
    /// </summary>
    /// <remarks>An interrupted deletion is finished by deleting again (see <see cref="Deletions"/>).</remarks>
    public async Task<ModelVersion> DeleteVersionAsync(
        string modelName, int version, string actor, bool force = false, CancellationToken cancellationToken = default)
    {
        var slot = VersionSlot.Validated(modelName, version);
        RegistryValidation.Actor(actor);
        return await _deletions.DeleteVersionAsync(slot, actor, force, cancellationToken);
    }

    /// <summary>
    /// Opens a READY version's checkpoint for reading. The stream verifies sha256 and size as it is read (unless
    /// <see cref="RegistryOptions.VerifyDownloads"/> is off).
    /// </summary>
    public async Task<CheckpointDownload> OpenCheckpointAsync(ModelRef reference, CancellationToken cancellationToken = default)
    {
        var version = await GetVersionAsync(reference, cancellationToken);
        return await _checkpoints.OpenDownloadAsync(version, cancellationToken);
    }

    // ----- Aliases -----

    /// <summary>
    /// Points <paramref name="alias"/> at a READY version, creating or moving it. The move is one ETag-guarded write
    /// of model.json, so readers see either the old or the new target; the audit entry and the result record old → new.
    /// </summary>
    /// <remarks>Safe against a concurrent delete of the version (see <see cref="AliasChanges.SetAsync"/>).</remarks>
    public async Task<AliasChange> SetAliasAsync(
        string modelName, string alias, int version, string actor, CancellationToken cancellationToken = default)
    {
        RegistryValidation.ModelName(modelName);
        RegistryValidation.Alias(alias);
        RegistryValidation.VersionNumber(version);
        RegistryValidation.Actor(actor);
        return await _aliases.SetAsync(new VersionSlot(modelName, version), alias, actor, cancellationToken);
    }

    /// <summary>Removes an alias; removing an alias that is not set is a no-op, so retries are safe.</summary>
    public async Task<AliasChange> DeleteAliasAsync(
        string modelName, string alias, string actor, CancellationToken cancellationToken = default)
    {
        RegistryValidation.ModelName(modelName);
        RegistryValidation.Alias(alias);
        RegistryValidation.Actor(actor);
        return await _aliases.DeleteAsync(modelName, alias, actor, cancellationToken);
    }

    // ----- Abandoned uploads -----

    /// <summary>
    /// Expires every version that is still PENDING <see cref="RegistryOptions.PendingTimeout"/> after it was created
    /// (a registry died mid-upload) to FAILED, deleting any checkpoint bytes it left; returns the versions it expired.
    /// Reads only version documents whose blob metadata does not already say READY or FAILED, so a sweep costs one
    /// listing plus a read per PENDING version. Safe to run on every replica at once (each change is ETag-guarded).
    /// </summary>
    public Task<IReadOnlyList<ModelVersion>> ExpireStalePendingAsync(CancellationToken cancellationToken) =>
        _expiry.ExpireStalePendingAsync(cancellationToken);

    // ----- Audit -----

    /// <summary>
    /// The model's audit log, oldest first (by the time each entry was written). History survives deleting the
    /// model. For changes to model.json (aliases, tags, description), <see cref="AuditEntry.ModelRevision"/> gives
    /// their exact order even when concurrent writers' timestamps interleave.
    /// </summary>
    public async Task<Page<AuditEntry>> GetAuditHistoryAsync(
        string modelName, int pageSize = 100, string? pageToken = null, CancellationToken cancellationToken = default)
    {
        RegistryValidation.ModelName(modelName);
        RegistryValidation.PageSize(pageSize);
        return await _audit.HistoryAsync(modelName, pageSize, pageToken, cancellationToken);
    }

    /// <summary>Read-modify-write of a version.json that also stamps time and actor on a real change.</summary>
    private Task<Updated<ModelVersion>> ChangeVersionAsync(
        string modelName, int version, string actor, Func<ModelVersion, ModelVersion?> change, CancellationToken cancellationToken)
    {
        var slot = VersionSlot.Validated(modelName, version);
        RegistryValidation.Actor(actor);
        return _index.TrackAsync(modelName, version, () => _store.UpdateAsync<ModelVersion>(slot.Document, current =>
                current.MovedTo is { } movedTo
                    ? throw new IfcbException(ErrorKind.NotFound,
                        $"Registered model '{modelName}' was renamed to '{movedTo}'; use '{movedTo}'.")
                    : change(current) is { } changed ? changed with { UpdatedAt = _time.GetUtcNow(), UpdatedBy = actor } : null,
            slot.NotFound, cancellationToken).Updated(), _ => version, cancellationToken);
    }
}
