using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Diagnostics;
using System.Globalization;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Ifcb.Platform;
using Ifcb.Platform.Checkpoints;

namespace Ifcb.Registry.Engine;

/// <summary>
/// The model registry (MLflow Model Registry semantics: versions, @aliases, tags, lineage, status, search), kept
/// entirely in one blob container; see <see cref="RegistryLayout"/> for the blob names. Safe for many concurrent
/// callers and processes: every write is ETag-guarded. Every write takes the <c>actor</c> recorded in the audit log.
/// Expected failures throw <see cref="IfcbException"/>; storage outages surface as Azure's RequestFailedException.
/// </summary>
/// <remarks>
/// The audit entry is appended after the change it describes; a crash in between loses that entry but never
/// records a change that did not happen.
/// </remarks>
public sealed class ModelRegistry
{
    private readonly ETagJsonStore _store;
    private readonly BlobContainerClient _container;
    private readonly RegistryOptions _options;
    private readonly TimeProvider _time;
    private const int HeaderReadBufferBytes = 64 * 1024;

    private readonly ConcurrentDictionary<string, AllocationState> _allocations = new(StringComparer.Ordinal);

    public ModelRegistry(BlobContainerClient container, RegistryOptions? options = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(container);
        _container = container;
        _options = options ?? new RegistryOptions();
        _time = timeProvider ?? TimeProvider.System;
        if (_options.PendingTimeout <= _options.UploadTimeout)
        {
            throw new ArgumentException(
                $"RegistryOptions.PendingTimeout ({_options.PendingTimeout}) must be longer than UploadTimeout ({_options.UploadTimeout}): " +
                "otherwise a version could expire while its upload is still running.", nameof(options));
        }

        _store = new ETagJsonStore(container, _options);
    }

    /// <summary>The audit-log actor for changes the registry makes on its own (expiring abandoned versions).</summary>
    public const string SystemActor = "registry";

    // ----- Registered models -----

    public async Task<RegisteredModel> CreateModelAsync(
        string name, string actor, string description = "", IReadOnlyDictionary<string, string>? tags = null,
        CancellationToken cancellationToken = default)
    {
        RegistryValidation.ModelName(name);
        RegistryValidation.Actor(actor);
        RegistryValidation.Description(description);
        var initialTags = (tags ?? ImmutableSortedDictionary<string, string>.Empty).ToImmutableSortedDictionary(StringComparer.Ordinal);
        RegistryValidation.Tags(initialTags);

        var now = _time.GetUtcNow();
        var model = new RegisteredModel
        {
            Name = name, Description = description, Tags = initialTags, Revision = 1,
            CreatedAt = now, CreatedBy = actor, UpdatedAt = now, UpdatedBy = actor,
        };
        if (await _store.TryCreateAsync(RegistryLayout.ModelDocument(name), model, cancellationToken).ConfigureAwait(false) is null)
        {
            throw new IfcbException(ErrorKind.AlreadyExists,
                $"Registered model '{name}' already exists; register a new version of it or choose another name.");
        }

        await AuditAsync(model, actor, AuditAction.ModelCreated, null, [], cancellationToken).ConfigureAwait(false);
        return model;
    }

    public async Task<RegisteredModel> GetModelAsync(string name, CancellationToken cancellationToken = default)
    {
        RegistryValidation.ModelName(name);
        return (await ReadModelAsync(name, cancellationToken).ConfigureAwait(false)).Value;
    }

    /// <summary>Registered models in name order.</summary>
    public async Task<Page<RegisteredModel>> ListModelsAsync(
        int pageSize = 100, string? pageToken = null, CancellationToken cancellationToken = default)
    {
        RegistryValidation.PageSize(pageSize);
        const string query = "models";
        var after = PageTokens.Decode<string>(pageToken, query);
        var names = (await _store.ListChildFoldersAsync(RegistryLayout.ModelsRoot, cancellationToken).ConfigureAwait(false))
            .Where(name => after is null || string.CompareOrdinal(name, after) > 0)
            .ToList();

        var models = new List<RegisteredModel>(pageSize);
        var scanned = 0;
        foreach (var batch in names.Chunk(_options.ListReadConcurrency))
        {
            var read = await Task.WhenAll(batch.Select(name =>
                _store.ReadAsync<RegisteredModel>(RegistryLayout.ModelDocument(name), cancellationToken))).ConfigureAwait(false);
            foreach (var model in read)
            {
                scanned++;
                // A folder without model.json is a model being deleted; skip it.
                if (model is null)
                {
                    continue;
                }

                models.Add(model.Value);
                if (models.Count == pageSize)
                {
                    return new Page<RegisteredModel>(models, scanned < names.Count ? PageTokens.Encode(model.Value.Name, query) : null);
                }
            }
        }

        return new Page<RegisteredModel>(models, null);
    }

    public async Task<RegisteredModel> UpdateModelDescriptionAsync(
        string name, string description, string actor, CancellationToken cancellationToken = default)
    {
        RegistryValidation.ModelName(name);
        RegistryValidation.Actor(actor);
        RegistryValidation.Description(description);
        var previous = "";
        var updated = await UpdateModelAsync(name, actor, model =>
        {
            previous = model.Description;
            return model.Description == description ? null : model with { Description = description };
        }, cancellationToken).ConfigureAwait(false);
        if (updated.Changed)
        {
            await AuditAsync(updated.Value, actor, AuditAction.ModelUpdated, null,
                [("previous_description", previous), ("description", description)], cancellationToken).ConfigureAwait(false);
        }

        return updated.Value;
    }

    public async Task<RegisteredModel> SetModelTagAsync(
        string name, string key, string value, string actor, CancellationToken cancellationToken = default)
    {
        RegistryValidation.ModelName(name);
        RegistryValidation.Actor(actor);
        RegistryValidation.TagKey(key);
        RegistryValidation.TagValue(key, value);
        var updated = await UpdateModelAsync(name, actor, model =>
        {
            if (model.Tags.TryGetValue(key, out var current) && current == value)
            {
                return null;
            }

            CheckRoomForTag(model.Tags, key, $"Model '{name}'");
            return model with { Tags = model.Tags.SetItem(key, value) };
        }, cancellationToken).ConfigureAwait(false);
        if (updated.Changed)
        {
            await AuditAsync(updated.Value, actor, AuditAction.ModelTagSet, null, [("key", key), ("value", value)], cancellationToken)
                .ConfigureAwait(false);
        }

        return updated.Value;
    }

    /// <summary>Removes a model tag; removing a tag that is not there is a no-op, so retries are safe.</summary>
    public async Task<RegisteredModel> DeleteModelTagAsync(
        string name, string key, string actor, CancellationToken cancellationToken = default)
    {
        RegistryValidation.ModelName(name);
        RegistryValidation.Actor(actor);
        RegistryValidation.TagKey(key);
        var updated = await UpdateModelAsync(name, actor, model =>
            model.Tags.ContainsKey(key) ? model with { Tags = model.Tags.Remove(key) } : null, cancellationToken).ConfigureAwait(false);
        if (updated.Changed)
        {
            await AuditAsync(updated.Value, actor, AuditAction.ModelTagDeleted, null, [("key", key)], cancellationToken).ConfigureAwait(false);
        }

        return updated.Value;
    }

    /// <summary>
    /// Deletes a registered model. Refused (FailedPrecondition) while it has versions unless <paramref name="force"/>,
    /// which deletes every version, checkpoint and alias with it. The audit history is kept. Returns the model as
    /// it was before deletion (aliases included) and the version numbers deleted with it.
    /// </summary>
    public async Task<ModelDeletion> DeleteModelAsync(string name, string actor, bool force = false, CancellationToken cancellationToken = default)
    {
        RegistryValidation.ModelName(name);
        RegistryValidation.Actor(actor);
        var existing = await ReadModelAsync(name, cancellationToken).ConfigureAwait(false); // NotFound when there is no such model
        var versions = await ListVersionNumbersAsync(name, cancellationToken).ConfigureAwait(false);
        if (versions.Count > 0 && !force)
        {
            throw new IfcbException(ErrorKind.FailedPrecondition,
                $"Registered model '{name}' still has {versions.Count} version(s); delete them first or delete with force.");
        }

        // model.json goes last, so an interrupted delete leaves a model that can simply be deleted again.
        var modelDocument = RegistryLayout.ModelDocument(name);
        var blobs = await _store.ListBlobNamesAsync(RegistryLayout.ModelPrefix(name), cancellationToken).ConfigureAwait(false);
        await Parallel.ForEachAsync(
            blobs.Where(blob => blob != modelDocument),
            new ParallelOptions { MaxDegreeOfParallelism = _options.ListReadConcurrency, CancellationToken = cancellationToken },
            async (blob, token) => await _store.DeleteAsync(blob, token).ConfigureAwait(false)).ConfigureAwait(false);
        await _store.DeleteAsync(modelDocument, cancellationToken).ConfigureAwait(false);

        await AuditAsync(name, actor, AuditAction.ModelDeleted, null, null,
            [("forced", force ? "true" : "false"), ("versions_deleted", versions.Count.ToString(CultureInfo.InvariantCulture)), ("blobs_deleted", blobs.Count.ToString(CultureInfo.InvariantCulture))],
            cancellationToken).ConfigureAwait(false);
        return new ModelDeletion(existing.Value, [.. versions]);
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
        return RegisterVersionAsync(modelName, request, _ => Task.FromResult(checkpoint), ownsCheckpoint: false, actor, cancellationToken);
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
        return RegisterVersionAsync(modelName, request, openCheckpoint, ownsCheckpoint: true, actor, cancellationToken);
    }

    private async Task<VersionRegistration> RegisterVersionAsync(string modelName, NewModelVersion request,
        Func<CancellationToken, Task<Stream>> openCheckpoint, bool ownsCheckpoint, string actor, CancellationToken cancellationToken)
    {
        RegistryValidation.ModelName(modelName);
        RegistryValidation.Actor(actor);
        RegistryValidation.NewVersion(request, _options.MaxCheckpointBytes);
        var sha256 = RegistryValidation.Sha256(request.Sha256);
        var model = await ReadModelAsync(modelName, cancellationToken).ConfigureAwait(false);

        Stored<IdempotencyClaim>? claim = null;
        if (request.IdempotencyKey is { } key)
        {
            var (existing, ownClaim) = await ClaimIdempotencyKeyAsync(modelName, key, sha256, cancellationToken).ConfigureAwait(false);
            if (existing is not null)
            {
                return new VersionRegistration(await WithAliasesAsync(existing, cancellationToken).ConfigureAwait(false), AlreadyRegistered: true);
            }

            claim = ownClaim;
        }

        // Started before the version exists, so no upload outlives its version's CreatedAt + UploadTimeout.
        using var deadline = new CancellationTokenSource(_options.UploadTimeout, _time);
        using var uploadCancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        Stream checkpoint;
        Stored<ModelVersion> pending;
        try
        {
            checkpoint = await openCheckpoint(uploadCancellation.Token).ConfigureAwait(false);
            try
            {
                pending = await AllocateVersionAsync(model.Value, number =>
                {
                    var now = _time.GetUtcNow();
                    return new ModelVersion
                    {
                        ModelName = modelName, Version = number, Status = ModelVersionStatus.Pending, Description = request.Description,
                        Arch = request.Arch, Classes = request.Classes, ImgNorm = request.ImgNorm, Pretrained = request.Pretrained,
                        Metrics = request.Metrics, Tags = request.Tags, Source = request.Source, DatasetFingerprint = request.DatasetFingerprint,
                        Resize = request.Resize, CheckpointBlob = RegistryLayout.Checkpoint(modelName, number), Sha256 = sha256, SizeBytes = request.SizeBytes,
                        IdempotencyKey = request.IdempotencyKey, CreatedAt = now, CreatedBy = actor, UpdatedAt = now, UpdatedBy = actor,
                    };
                }, actor, cancellationToken).ConfigureAwait(false);
            }
            catch when (ownsCheckpoint)
            {
                await checkpoint.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }
        catch when (claim is not null)
        {
            await ReleaseClaimAsync(claim).ConfigureAwait(false);
            throw;
        }

        await using var ownedCheckpoint = ownsCheckpoint ? checkpoint : null;
        var number = pending.Value.Version;

        ModelVersion ready;
        try
        {
            if (claim is not null)
            {
                // Publish the number so duplicates return this version. If our claim was taken over meanwhile (it
                // was stale), the other registration owns the key and this one is simply a version without it.
                await _store.TryReplaceAsync(claim.Value.Name, claim.Value with { Version = number }, claim.ETag, cancellationToken)
                    .ConfigureAwait(false);
            }

            CheckpointHeader stored;
            try
            {
                await UploadCheckpointAsync(pending.Value.CheckpointBlob, checkpoint, sha256, request.SizeBytes, uploadCancellation.Token)
                    .ConfigureAwait(false);
                stored = await ReadCheckpointHeaderAsync(pending.Value.CheckpointBlob, uploadCancellation.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException e) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw new IfcbException(ErrorKind.DeadlineExceeded,
                    $"The checkpoint upload did not finish within {Durations.Describe(_options.UploadTimeout)} (the registry's upload " +
                    "deadline); the client sent too slowly or stalled. Nothing was stored; register again.", e);
            }

            CheckpointConformance.Check(request, stored);
            ready = await MarkReadyAsync(pending, version => CheckpointConformance.Complete(version, stored), actor, cancellationToken)
                .ConfigureAwait(false);
        }
        catch (Exception failure)
        {
            var reason = failure is IfcbException ? failure.Message : $"Checkpoint upload failed: {Faults.Reason(failure)}";
            await MarkFailedAsync(pending.Value, reason, actor).ConfigureAwait(false);
            throw;
        }

        await AuditAsync(modelName, actor, AuditAction.VersionRegistered, number, null,
            [("sha256", sha256), ("size_bytes", request.SizeBytes.ToString(CultureInfo.InvariantCulture)),
             ("training_job_id", request.Source.TrainingJobId ?? ""), ("idempotency_key", request.IdempotencyKey ?? "")],
            cancellationToken).ConfigureAwait(false);
        // Aliases need a READY version and this one only just became READY, so there are none to look up.
        return new VersionRegistration(ready, AlreadyRegistered: false);
    }

    public Task<ModelVersion> GetVersionAsync(string reference, CancellationToken cancellationToken = default) =>
        GetVersionAsync(ModelVersionReference.Parse(reference), cancellationToken);

    /// <summary>Resolves a version by number, alias or "latest" (the newest READY version).</summary>
    public async Task<ModelVersion> GetVersionAsync(ModelVersionReference reference, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reference);
        var name = reference.ModelName;
        if (reference.Version is { } requested)
        {
            // Both documents are needed (aliases live in model.json); fetch them together.
            var modelRead = ReadModelAsync(name, cancellationToken);
            var versionRead = _store.ReadAsync<ModelVersion>(RegistryLayout.VersionDocument(name, requested), cancellationToken);
            await Task.WhenAll(modelRead, versionRead).ConfigureAwait(false);
            var found = await versionRead.ConfigureAwait(false) ?? throw VersionNotFound(name, requested);
            var current = await ExpireIfStaleAsync(found.Value, cancellationToken).ConfigureAwait(false);
            return WithAliases(current, (await modelRead.ConfigureAwait(false)).Value);
        }

        var model = (await ReadModelAsync(name, cancellationToken).ConfigureAwait(false)).Value;
        if (reference.Alias is { } alias)
        {
            if (!model.Aliases.TryGetValue(alias, out var target))
            {
                throw new IfcbException(ErrorKind.NotFound,
                    $"Model '{name}' has no alias '@{alias}'; set it first (aliases: {string.Join(", ", model.Aliases.Keys.Select(a => "@" + a))}).");
            }

            var aliased = await _store.ReadAsync<ModelVersion>(RegistryLayout.VersionDocument(name, target), cancellationToken).ConfigureAwait(false)
                ?? throw VersionNotFound(name, target);
            return WithAliases(aliased.Value, model);
        }

        var numbers = await ListVersionNumbersAsync(name, cancellationToken).ConfigureAwait(false);
        for (var i = numbers.Count - 1; i >= 0; i--)
        {
            var candidate = await _store.ReadAsync<ModelVersion>(RegistryLayout.VersionDocument(name, numbers[i]), cancellationToken)
                .ConfigureAwait(false);
            if (candidate?.Value.Status == ModelVersionStatus.Ready)
            {
                return WithAliases(candidate.Value, model);
            }
        }

        throw new IfcbException(ErrorKind.NotFound, $"Model '{name}' has no READY version yet; register one first.");
    }

    /// <summary>
    /// Versions matching <paramref name="filter"/>, ordered by model name then version number. Each page reads
    /// the version documents it scans; the page size is 1..1000.
    /// </summary>
    public async Task<Page<ModelVersion>> SearchVersionsAsync(
        VersionFilter filter, int pageSize = 100, string? pageToken = null, CancellationToken cancellationToken = default)
    {
        RegistryValidation.Filter(filter);
        RegistryValidation.PageSize(pageSize);
        var query = PageTokens.QueryFingerprint(filter);
        var resume = PageTokens.Decode<VersionCursor>(pageToken, query);

        IReadOnlyList<string> models = filter.ModelName is { } only
            ? [only]
            : await _store.ListChildFoldersAsync(RegistryLayout.ModelsRoot, cancellationToken).ConfigureAwait(false);
        models = models.Where(m => resume is null || string.CompareOrdinal(m, resume.Model) >= 0).ToList();

        var page = new List<ModelVersion>(pageSize);
        for (var m = 0; m < models.Count; m++)
        {
            var name = models[m];
            var model = await _store.ReadAsync<RegisteredModel>(RegistryLayout.ModelDocument(name), cancellationToken).ConfigureAwait(false);
            if (model is null)
            {
                if (filter.ModelName is not null)
                {
                    throw ModelNotFound(name);
                }

                continue;
            }

            var numbers = (await ListVersionNumbersAsync(name, cancellationToken).ConfigureAwait(false))
                .Where(v => resume is null || name != resume.Model || v > resume.Version)
                .ToList();
            var scanned = 0;
            foreach (var batch in numbers.Chunk(_options.ListReadConcurrency))
            {
                var versions = await Task.WhenAll(batch.Select(v =>
                    _store.ReadAsync<ModelVersion>(RegistryLayout.VersionDocument(name, v), cancellationToken))).ConfigureAwait(false);
                foreach (var stored in versions)
                {
                    scanned++;
                    if (stored is null)
                    {
                        continue;
                    }

                    var version = await ExpireIfStaleAsync(stored.Value, cancellationToken).ConfigureAwait(false);
                    if (!filter.Matches(version))
                    {
                        continue;
                    }

                    page.Add(WithAliases(version, model.Value));
                    if (page.Count == pageSize)
                    {
                        var more = scanned < numbers.Count || m < models.Count - 1;
                        return new Page<ModelVersion>(page,
                            more ? PageTokens.Encode(new VersionCursor(name, version.Version), query) : null);
                    }
                }
            }
        }

        return new Page<ModelVersion>(page, null);
    }

    public async Task<ModelVersion> SetVersionTagAsync(
        string modelName, int version, string key, string value, string actor, CancellationToken cancellationToken = default)
    {
        RegistryValidation.TagKey(key);
        RegistryValidation.TagValue(key, value);
        var updated = await UpdateVersionAsync(modelName, version, actor, current =>
        {
            if (current.Tags.TryGetValue(key, out var existing) && existing == value)
            {
                return null;
            }

            CheckRoomForTag(current.Tags, key, $"Version {version} of '{modelName}'");
            return current with { Tags = current.Tags.SetItem(key, value) };
        }, cancellationToken).ConfigureAwait(false);
        if (updated.Changed)
        {
            await AuditAsync(modelName, actor, AuditAction.VersionTagSet, version, null, [("key", key), ("value", value)], cancellationToken)
                .ConfigureAwait(false);
        }

        return await WithAliasesAsync(updated.Value, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Removes a version tag; removing a tag that is not there is a no-op, so retries are safe.</summary>
    public async Task<ModelVersion> DeleteVersionTagAsync(
        string modelName, int version, string key, string actor, CancellationToken cancellationToken = default)
    {
        RegistryValidation.TagKey(key);
        var updated = await UpdateVersionAsync(modelName, version, actor, current =>
            current.Tags.ContainsKey(key) ? current with { Tags = current.Tags.Remove(key) } : null, cancellationToken).ConfigureAwait(false);
        if (updated.Changed)
        {
            await AuditAsync(modelName, actor, AuditAction.VersionTagDeleted, version, null, [("key", key)], cancellationToken).ConfigureAwait(false);
        }

        return await WithAliasesAsync(updated.Value, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Deletes a version and its checkpoint. Refused (FailedPrecondition) while an alias points at it unless
    /// <paramref name="force"/>, which removes those aliases first. Its number is never reused. Returns the deleted
    /// version; its <see cref="ModelVersion.Aliases"/> are the aliases removed with it.
    /// </summary>
    /// <remarks>
    /// One ETag-guarded write of model.json removes the aliases and marks the number in
    /// <see cref="RegisteredModel.DeletingVersions"/>; SetAlias refuses a marked number, so no alias can land on the
    /// version while its blobs go. The document goes last but for the mark, so a delete interrupted at any point is
    /// finished by deleting again (if only the mark was left, that second delete reports NotFound once it has cleared it).
    /// </remarks>
    public async Task<ModelVersion> DeleteVersionAsync(
        string modelName, int version, string actor, bool force = false, CancellationToken cancellationToken = default)
    {
        RegistryValidation.ModelName(modelName);
        RegistryValidation.VersionNumber(version);
        RegistryValidation.Actor(actor);
        var document = RegistryLayout.VersionDocument(modelName, version);
        var existing = await _store.ReadAsync<ModelVersion>(document, cancellationToken).ConfigureAwait(false);

        string[] removedAliases = [];
        var model = await UpdateModelAsync(modelName, actor, current =>
        {
            if (existing is null && !current.DeletingVersions.Contains(version))
            {
                throw VersionNotFound(modelName, version);
            }

            removedAliases = current.Aliases.Where(a => a.Value == version).Select(a => a.Key).ToArray();
            if (removedAliases.Length > 0 && !force)
            {
                throw new IfcbException(ErrorKind.FailedPrecondition,
                    $"Version {version} of '{modelName}' is the target of {string.Join(", ", removedAliases.Select(a => "@" + a))}; " +
                    "move or delete the alias first, or delete with force.");
            }

            // Raising the counter here guarantees a deleted number is never handed out again.
            return removedAliases.Length == 0 && current.LatestVersion >= version && current.DeletingVersions.Contains(version)
                ? null
                : current with
                {
                    Aliases = current.Aliases.RemoveRange(removedAliases), LatestVersion = Math.Max(current.LatestVersion, version),
                    DeletingVersions = current.DeletingVersions.Add(version),
                };
        }, cancellationToken).ConfigureAwait(false);

        await _store.DeleteAsync(existing?.Value.CheckpointBlob ?? RegistryLayout.Checkpoint(modelName, version), cancellationToken).ConfigureAwait(false);
        if (existing?.Value.IdempotencyKey is { } key)
        {
            var claimName = RegistryLayout.IdempotencyClaim(modelName, key);
            var claim = await _store.ReadAsync<IdempotencyClaim>(claimName, cancellationToken).ConfigureAwait(false);
            if (claim?.Value.Version == version)
            {
                await _store.DeleteAsync(claimName, cancellationToken, claim.ETag).ConfigureAwait(false);
            }
        }

        await _store.DeleteAsync(document, cancellationToken).ConfigureAwait(false);
        await UpdateModelAsync(modelName, actor, current =>
                current.DeletingVersions.Contains(version) ? current with { DeletingVersions = current.DeletingVersions.Remove(version) } : null,
            cancellationToken).ConfigureAwait(false);
        if (existing is null)
        {
            throw new IfcbException(ErrorKind.NotFound,
                $"Version {version} of model '{modelName}' does not exist; an interrupted deletion of it has now been completed.");
        }

        foreach (var alias in removedAliases)
        {
            await AuditAsync(model.Value, actor, AuditAction.AliasDeleted, version,
                [("alias", alias), ("previous_version", version.ToString(CultureInfo.InvariantCulture)), ("new_version", "")],
                cancellationToken).ConfigureAwait(false);
        }

        await AuditAsync(modelName, actor, AuditAction.VersionDeleted, version, null,
            [("sha256", existing.Value.Sha256), ("status", existing.Value.Status.ToString().ToUpperInvariant())],
            cancellationToken).ConfigureAwait(false);
        return existing.Value with { Aliases = [.. removedAliases] };
    }

    /// <summary>
    /// Opens a READY version's checkpoint for reading. The stream verifies sha256 and size as it is read (unless
    /// <see cref="RegistryOptions.VerifyDownloads"/> is off).
    /// </summary>
    public async Task<CheckpointDownload> OpenCheckpointAsync(ModelVersionReference reference, CancellationToken cancellationToken = default)
    {
        var version = await GetVersionAsync(reference, cancellationToken).ConfigureAwait(false);
        if (version.Status != ModelVersionStatus.Ready)
        {
            throw new IfcbException(ErrorKind.FailedPrecondition,
                $"Version {version.Version} of '{version.ModelName}' is {version.Status.ToString().ToUpperInvariant()}; only READY versions can be downloaded.");
        }

        Stream content;
        try
        {
            var response = await _container.GetBlobClient(version.CheckpointBlob)
                .DownloadStreamingAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            content = response.Value.Content;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new IfcbException(ErrorKind.DataLoss,
                $"Checkpoint of READY version {version.Version} of '{version.ModelName}' is missing from storage ({version.CheckpointBlob}).", e);
        }

        return new CheckpointDownload(version,
            _options.VerifyDownloads ? new ChecksumVerifyingStream(content, version.SizeBytes, version.Sha256, leaveOpen: false) : content);
    }

    // ----- Aliases -----

    /// <summary>
    /// Points <paramref name="alias"/> at a READY version, creating or moving it. The move is one ETag-guarded write
    /// of model.json, so readers see either the old or the new target; the audit entry and the result record old → new.
    /// </summary>
    /// <remarks>
    /// The version is checked after model.json is read and before it is written back If-Match: a delete marks the
    /// number in model.json before it removes the document, so either this write fails and the check runs again (and
    /// sees the mark, or the missing document), or the alias is in place before the delete looks for aliases.
    /// </remarks>
    public async Task<AliasChange> SetAliasAsync(
        string modelName, string alias, int version, string actor, CancellationToken cancellationToken = default)
    {
        RegistryValidation.ModelName(modelName);
        RegistryValidation.Alias(alias);
        RegistryValidation.VersionNumber(version);
        RegistryValidation.Actor(actor);
        int? previous = null;
        var updated = await UpdateModelAsync(modelName, actor, async model =>
        {
            if (model.DeletingVersions.Contains(version))
            {
                throw new IfcbException(ErrorKind.NotFound,
                    $"Version {version} of '{modelName}' is being deleted; point @{alias} at another version.");
            }

            var target = await _store.ReadAsync<ModelVersion>(RegistryLayout.VersionDocument(modelName, version), cancellationToken)
                .ConfigureAwait(false) ?? throw VersionNotFound(modelName, version);
            if (target.Value.Status != ModelVersionStatus.Ready)
            {
                throw new IfcbException(ErrorKind.FailedPrecondition,
                    $"Version {version} of '{modelName}' is {target.Value.Status.ToString().ToUpperInvariant()}; aliases may only point at READY versions.");
            }

            previous = model.Aliases.TryGetValue(alias, out var current) ? current : null;
            if (previous is null && model.Aliases.Count >= _options.MaxAliasesPerModel)
            {
                throw new IfcbException(ErrorKind.ResourceExhausted, string.Create(CultureInfo.InvariantCulture,
                    $"Model '{modelName}' already has {model.Aliases.Count} aliases, the most it may have (RegistryOptions.MaxAliasesPerModel); delete one first."));
            }

            return previous == version ? null : model with { Aliases = model.Aliases.SetItem(alias, version) };
        }, cancellationToken).ConfigureAwait(false);

        if (updated.Changed)
        {
            await AuditAsync(updated.Value, actor, AuditAction.AliasSet, version,
                [("alias", alias), ("previous_version", previous?.ToString(CultureInfo.InvariantCulture) ?? ""),
                 ("new_version", version.ToString(CultureInfo.InvariantCulture))],
                cancellationToken).ConfigureAwait(false);
        }

        return new AliasChange(updated.Value, alias, previous, version);
    }

    /// <summary>Removes an alias; removing an alias that is not set is a no-op, so retries are safe.</summary>
    public async Task<AliasChange> DeleteAliasAsync(
        string modelName, string alias, string actor, CancellationToken cancellationToken = default)
    {
        RegistryValidation.ModelName(modelName);
        RegistryValidation.Alias(alias);
        RegistryValidation.Actor(actor);
        int? previous = null;
        var updated = await UpdateModelAsync(modelName, actor, model =>
        {
            previous = model.Aliases.TryGetValue(alias, out var current) ? current : null;
            return previous is null ? null : model with { Aliases = model.Aliases.Remove(alias) };
        }, cancellationToken).ConfigureAwait(false);

        if (updated.Changed)
        {
            await AuditAsync(updated.Value, actor, AuditAction.AliasDeleted, previous,
                [("alias", alias), ("previous_version", previous?.ToString(CultureInfo.InvariantCulture) ?? ""), ("new_version", "")],
                cancellationToken).ConfigureAwait(false);
        }

        return new AliasChange(updated.Value, alias, previous, null);
    }

    // ----- Abandoned uploads -----

    /// <summary>
    /// Expires every version that is still PENDING <see cref="RegistryOptions.PendingTimeout"/> after it was created
    /// (a registry died mid-upload) to FAILED, deleting any checkpoint bytes it left; returns the versions it expired.
    /// Reads only version documents whose blob metadata does not already say READY or FAILED, so a sweep costs one
    /// listing plus a read per PENDING version. Safe to run on every replica at once (each change is ETag-guarded).
    /// </summary>
    public async Task<IReadOnlyList<ModelVersion>> ExpireStalePendingAsync(CancellationToken cancellationToken)
    {
        var candidates = (await _store.ListBlobsAsync(RegistryLayout.ModelsRoot, withMetadata: true, cancellationToken).ConfigureAwait(false))
            .Where(blob => !ModelVersion.IsSettled(blob.Metadata))
            .Select(blob => RegistryLayout.ParseVersionDocument(blob.Name))
            .OfType<(string Model, int Version)>()
            .ToList();
        var expired = new List<ModelVersion>();
        foreach (var batch in candidates.Chunk(_options.ListReadConcurrency))
        {
            var versions = await Task.WhenAll(batch.Select(c =>
                _store.ReadAsync<ModelVersion>(RegistryLayout.VersionDocument(c.Model, c.Version), cancellationToken))).ConfigureAwait(false);
            foreach (var stored in versions)
            {
                if (stored is null)
                {
                    continue;
                }

                if (stored.Value.Status != ModelVersionStatus.Pending)
                {
                    // Written before the status was mirrored into metadata: rewrite it once (same content, now with
                    // metadata) so later sweeps skip it. If-Match: a concurrent change wins and carries metadata anyway.
                    await _store.TryReplaceAsync(RegistryLayout.VersionDocument(stored.Value.ModelName, stored.Value.Version),
                        stored.Value, stored.ETag, cancellationToken).ConfigureAwait(false);
                }
                else if (IsStale(stored.Value) && await ExpireAsync(stored.Value, cancellationToken).ConfigureAwait(false) is { } failed)
                {
                    expired.Add(failed);
                }
            }
        }

        return expired;
    }

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
        var query = "audit:" + modelName;
        var after = PageTokens.Decode<string>(pageToken, query);
        var names = (await _store.ListBlobNamesAsync(RegistryLayout.AuditPrefix(modelName), cancellationToken).ConfigureAwait(false))
            .Where(name => after is null || string.CompareOrdinal(name, after) > 0)
            .ToList();
        var selected = names.Take(pageSize).ToList();
        var entries = new List<AuditEntry>(selected.Count);
        foreach (var batch in selected.Chunk(_options.ListReadConcurrency))
        {
            var read = await Task.WhenAll(batch.Select(name => _store.ReadAsync<AuditEntry>(name, cancellationToken))).ConfigureAwait(false);
            entries.AddRange(read.Where(entry => entry is not null).Select(entry => entry!.Value));
        }

        return new Page<AuditEntry>(entries, names.Count > selected.Count ? PageTokens.Encode(selected[^1], query) : null);
    }

    // ----- Internals -----

    private sealed record VersionCursor(string Model, int Version);

    /// <summary>Claim of an idempotency key; <see cref="Version"/> is null until the claimant has its number.</summary>
    private sealed record IdempotencyClaim(string Name, string Key, int? Version, DateTimeOffset ClaimedAt);

    private async Task<Stored<RegisteredModel>> ReadModelAsync(string name, CancellationToken cancellationToken) =>
        await _store.ReadAsync<RegisteredModel>(RegistryLayout.ModelDocument(name), cancellationToken).ConfigureAwait(false)
        ?? throw ModelNotFound(name);

    /// <summary>Read-modify-write of model.json that also stamps revision, time and actor on a real change.</summary>
    private Task<Updated<RegisteredModel>> UpdateModelAsync(
        string name, string actor, Func<RegisteredModel, RegisteredModel?> change, CancellationToken cancellationToken) =>
        _store.UpdateAsync<RegisteredModel>(RegistryLayout.ModelDocument(name), model =>
            change(model) is { } changed
                ? changed with { Revision = model.Revision + 1, UpdatedAt = _time.GetUtcNow(), UpdatedBy = actor }
                : null,
            () => ModelNotFound(name), cancellationToken);

    /// <inheritdoc cref="UpdateModelAsync(string, string, Func{RegisteredModel, RegisteredModel?}, CancellationToken)"/>
    private Task<Updated<RegisteredModel>> UpdateModelAsync(
        string name, string actor, Func<RegisteredModel, Task<RegisteredModel?>> change, CancellationToken cancellationToken) =>
        _store.UpdateAsync<RegisteredModel>(RegistryLayout.ModelDocument(name), async model =>
            await change(model).ConfigureAwait(false) is { } changed
                ? changed with { Revision = model.Revision + 1, UpdatedAt = _time.GetUtcNow(), UpdatedBy = actor }
                : null,
            () => ModelNotFound(name), cancellationToken);

    private Task<Updated<ModelVersion>> UpdateVersionAsync(
        string modelName, int version, string actor, Func<ModelVersion, ModelVersion?> change, CancellationToken cancellationToken)
    {
        RegistryValidation.ModelName(modelName);
        RegistryValidation.VersionNumber(version);
        RegistryValidation.Actor(actor);
        return _store.UpdateAsync<ModelVersion>(RegistryLayout.VersionDocument(modelName, version), current =>
                change(current) is { } changed ? changed with { UpdatedAt = _time.GetUtcNow(), UpdatedBy = actor } : null,
            () => VersionNotFound(modelName, version), cancellationToken);
    }

    /// <summary>
    /// Claims the next free version number by creating its version.json with If-None-Match. A taken slot means
    /// another registration got that number, so we try the next: numbers come out dense and unique, and a crash
    /// after the claim leaves a PENDING version rather than a gap. Within this process, registrations of one model
    /// take turns (a gate) and remember the last number, so concurrent callers do not all probe the same slots;
    /// across processes the If-None-Match create alone keeps numbers unique.
    /// </summary>
    private async Task<Stored<ModelVersion>> AllocateVersionAsync(
        RegisteredModel model, Func<int, ModelVersion> draft, string actor, CancellationToken cancellationToken)
    {
        var state = _allocations.GetOrAdd(model.Name, _ => new AllocationState());
        await state.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // A model deleted and created again under the same name starts over; the remembered number is stale.
            if (state.ModelCreatedAt != model.CreatedAt)
            {
                state.ModelCreatedAt = model.CreatedAt;
                state.LastAllocated = 0;
            }

            var start = Math.Max(model.LatestVersion, state.LastAllocated);
            for (var probe = 1; probe <= _options.MaxVersionAllocationProbes; probe++)
            {
                var candidate = start + probe;
                if (candidate > RegistryValidation.MaxVersionNumber)
                {
                    throw new IfcbException(ErrorKind.ResourceExhausted,
                        $"Model '{model.Name}' has used all {RegistryValidation.MaxVersionNumber} version numbers; register under a new model name.");
                }

                var version = draft(candidate);
                if (await _store.TryCreateAsync(RegistryLayout.VersionDocument(model.Name, candidate), version, cancellationToken)
                        .ConfigureAwait(false) is { } etag)
                {
                    state.LastAllocated = candidate;
                    // Inside the gate, so this process's registrations never race each other on model.json.
                    await RaiseLatestVersionAsync(model.Name, candidate, actor, cancellationToken).ConfigureAwait(false);
                    return new Stored<ModelVersion>(version, etag);
                }
            }

            throw new IfcbException(ErrorKind.Aborted,
                $"Could not allocate a version of '{model.Name}' after {_options.MaxVersionAllocationProbes} taken slots; retry the registration.");
        }
        finally
        {
            state.Gate.Release();
        }
    }

    /// <summary>Per-model allocation turn-taking within this process (see <see cref="AllocateVersionAsync"/>).</summary>
    private sealed class AllocationState
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);

        public DateTimeOffset ModelCreatedAt { get; set; }

        public int LastAllocated { get; set; }
    }

    /// <summary>
    /// Keeps model.json's latest-version counter up to date. It is only the starting point for allocation (the
    /// If-None-Match create is what makes numbers unique), so losing this race to a higher number is fine.
    /// </summary>
    private async Task RaiseLatestVersionAsync(string modelName, int version, string actor, CancellationToken cancellationToken)
    {
        try
        {
            await UpdateModelAsync(modelName, actor, model => model.LatestVersion >= version ? null : model with { LatestVersion = version },
                cancellationToken).ConfigureAwait(false);
        }
        catch (IfcbException e) when (e.Kind == ErrorKind.Aborted)
        {
            // Heavy contention: a later registration or delete raises it; allocation probes past a stale value.
        }
    }

    /// <summary>
    /// PENDING → READY (with <paramref name="complete"/> applied), normally one write using the ETag from creation;
    /// re-reads only if someone wrote since.
    /// </summary>
    private async Task<ModelVersion> MarkReadyAsync(
        Stored<ModelVersion> pending, Func<ModelVersion, ModelVersion> complete, string actor, CancellationToken cancellationToken)
    {
        var (modelName, number) = (pending.Value.ModelName, pending.Value.Version);
        var document = RegistryLayout.VersionDocument(modelName, number);
        var ready = complete(pending.Value) with { Status = ModelVersionStatus.Ready, UpdatedAt = _time.GetUtcNow(), UpdatedBy = actor };
        if (await _store.TryReplaceAsync(document, ready, pending.ETag, cancellationToken).ConfigureAwait(false) is not null)
        {
            return ready;
        }

        var updated = await _store.UpdateAsync<ModelVersion>(document, version =>
                version.Status == ModelVersionStatus.Pending
                    ? complete(version) with { Status = ModelVersionStatus.Ready, UpdatedAt = _time.GetUtcNow(), UpdatedBy = actor }
                    : throw new IfcbException(ErrorKind.Aborted,
                        $"Version {number} of '{modelName}' changed to {version.Status} while its checkpoint uploaded; register again."),
            () => new IfcbException(ErrorKind.Aborted,
                $"Version {number} of '{modelName}' was deleted while its checkpoint uploaded; register again."),
            cancellationToken).ConfigureAwait(false);
        return updated.Value;
    }

    /// <summary>
    /// Reads the stored checkpoint's hparams.json back from storage. The blob is opened as a seekable stream with a
    /// small buffer, so only the zip's directory (at its end) and the hparams entry (at its start) are fetched, a few
    /// 64 KiB ranges: the weights in between are never downloaded.
    /// </summary>
    private async Task<CheckpointHeader> ReadCheckpointHeaderAsync(string blobName, CancellationToken cancellationToken)
    {
        var options = new BlobOpenReadOptions(allowModifications: false) { BufferSize = HeaderReadBufferBytes };
        await using var stored = await _container.GetBlobClient(blobName).OpenReadAsync(options, cancellationToken).ConfigureAwait(false);
        try
        {
            // The zip reader is synchronous; keep its few blocking range reads off the caller's thread.
            return await Task.Run(() => CheckpointHeader.Read(stored), cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidDataException e)
        {
            throw IfcbException.InvalidArgument($"The uploaded file is not a valid model checkpoint: {e.Message}");
        }
    }

    private async Task<(ModelVersion? Existing, Stored<IdempotencyClaim>? Claim)> ClaimIdempotencyKeyAsync(
        string modelName, string key, string sha256, CancellationToken cancellationToken)
    {
        var claimName = RegistryLayout.IdempotencyClaim(modelName, key);
        var waited = Stopwatch.StartNew();
        for (var attempt = 1; ; attempt++)
        {
            if (waited.Elapsed > _options.IdempotencyWaitTimeout)
            {
                throw new IfcbException(ErrorKind.Aborted,
                    $"Another registration of '{modelName}' with idempotency key '{key}' is still in progress; retry later.");
            }

            var fresh = new IdempotencyClaim(claimName, key, null, _time.GetUtcNow());
            var current = await _store.ReadAsync<IdempotencyClaim>(claimName, cancellationToken).ConfigureAwait(false);
            if (current is null)
            {
                if (await _store.TryCreateAsync(claimName, fresh, cancellationToken).ConfigureAwait(false) is { } created)
                {
                    return (null, new Stored<IdempotencyClaim>(fresh, created));
                }

                continue; // Another registration claimed it first; read its claim.
            }

            bool takeOver;
            if (current.Value.Version is { } number)
            {
                var stored = await _store.ReadAsync<ModelVersion>(RegistryLayout.VersionDocument(modelName, number), cancellationToken)
                    .ConfigureAwait(false);
                var existing = stored is null ? null : await ExpireIfStaleAsync(stored.Value, cancellationToken).ConfigureAwait(false);
                if (existing is not null && existing.Status != ModelVersionStatus.Failed)
                {
                    if (existing.Sha256 != sha256)
                    {
                        throw new IfcbException(ErrorKind.FailedPrecondition,
                            $"Idempotency key '{key}' already registered version {number} of '{modelName}' with a different checkpoint " +
                            $"(sha256 {existing.Sha256}); use a new key for a different checkpoint.");
                    }

                    if (existing.Status != ModelVersionStatus.Pending)
                    {
                        return (existing, null);
                    }

                    // A PENDING version is not a registration to hand back: its upload is still running (wait for it, as
                    // for a claim without a number), or was abandoned by a crash and expires at the time named.
                    if (waited.Elapsed + _store.Backoff(attempt) > _options.IdempotencyWaitTimeout)
                    {
                        throw new IfcbException(ErrorKind.Aborted,
                            $"Idempotency key '{key}' is registering version {number} of '{modelName}' (PENDING since {existing.CreatedAt:O}); " +
                            $"retry in a moment: it becomes READY when that upload finishes, or expires at {existing.CreatedAt + _options.PendingTimeout:O} if it was abandoned.");
                    }

                    await Task.Delay(_store.Backoff(attempt), cancellationToken).ConfigureAwait(false);
                    continue;
                }

                // The earlier attempt failed, was abandoned (expired above) or deleted: a retry with the same key may try again.
                takeOver = true;
            }
            else
            {
                takeOver = _time.GetUtcNow() - current.Value.ClaimedAt > _options.IdempotencyClaimTimeout;
            }

            if (takeOver)
            {
                if (await _store.TryReplaceAsync(claimName, fresh, current.ETag, cancellationToken).ConfigureAwait(false) is { } replaced)
                {
                    return (null, new Stored<IdempotencyClaim>(fresh, replaced));
                }

                continue;
            }

            // The first registration is between claiming the key and allocating its number: give it a moment.
            await Task.Delay(_store.Backoff(attempt), cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task UploadCheckpointAsync(string blobName, Stream checkpoint, string sha256, long size, CancellationToken cancellationToken)
    {
        await using var verifying = new ChecksumVerifyingStream(checkpoint, size, sha256, leaveOpen: true);
        var options = new BlobUploadOptions
        {
            // The slot is ours alone; If-None-Match makes a stray second writer fail instead of overwriting.
            Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
            HttpHeaders = new BlobHttpHeaders { ContentType = "application/octet-stream" },
            Metadata = new Dictionary<string, string> { ["sha256"] = sha256 },
        };
        if (_options.UploadTransferOptions is { } transfer)
        {
            options.TransferOptions = transfer;
        }

        try
        {
            await _container.GetBlobClient(blobName).UploadAsync(verifying, options, cancellationToken).ConfigureAwait(false);
        }
        catch (AggregateException e) when (e.InnerExceptions.Count == 1 && e.InnerException is IfcbException inner)
        {
            throw inner;
        }
    }

    /// <summary>
    /// Gives up a claim no version holds yet (opening the checkpoint or allocating failed), so that a retry with the
    /// key does not wait <see cref="RegistryOptions.IdempotencyClaimTimeout"/> for it. Best effort: the caller is
    /// already failing with the error that matters, and a claim left behind only delays retries.
    /// </summary>
    private async Task ReleaseClaimAsync(Stored<IdempotencyClaim> claim)
    {
        try
        {
            await _store.DeleteAsync(claim.Value.Name, CancellationToken.None, claim.ETag).ConfigureAwait(false);
        }
        catch (RequestFailedException)
        {
        }
    }

    private async Task MarkFailedAsync(ModelVersion pending, string reason, string actor)
    {
        // Cleanup must run even when the caller's token was cancelled, hence CancellationToken.None.
        try
        {
            await _store.DeleteAsync(pending.CheckpointBlob, CancellationToken.None).ConfigureAwait(false);
            // Only from PENDING: if the version was expired meanwhile, its reason (and audit entry) already stand.
            var failed = await _store.UpdateAsync<ModelVersion>(RegistryLayout.VersionDocument(pending.ModelName, pending.Version),
                version => version.Status != ModelVersionStatus.Pending ? null : version with
                {
                    Status = ModelVersionStatus.Failed, StatusMessage = reason, UpdatedAt = _time.GetUtcNow(), UpdatedBy = actor,
                },
                () => VersionNotFound(pending.ModelName, pending.Version), CancellationToken.None).ConfigureAwait(false);
            if (failed.Changed)
            {
                await AuditAsync(pending.ModelName, actor, AuditAction.VersionFailed, pending.Version, null, [("reason", reason)],
                    CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is RequestFailedException or IfcbException)
        {
            // The original failure is what the caller needs; a version left PENDING is never served as READY.
        }
    }

    /// <summary>A new tag key needs room: tags live in one document that every change rewrites.</summary>
    private static void CheckRoomForTag(IReadOnlyDictionary<string, string> tags, string key, string owner)
    {
        if (!tags.ContainsKey(key) && tags.Count >= Limits.MaxListItems)
        {
            throw new IfcbException(ErrorKind.ResourceExhausted, string.Create(CultureInfo.InvariantCulture,
                $"{owner} already has {tags.Count} tags, the most it may have (limit {nameof(Limits.MaxListItems)}); delete one first."));
        }
    }

    private bool IsStale(ModelVersion version) =>
        version.Status == ModelVersionStatus.Pending && _time.GetUtcNow() - version.CreatedAt > _options.PendingTimeout;

    /// <summary>The version as it stands, after expiring it if it is an abandoned PENDING one.</summary>
    private async Task<ModelVersion> ExpireIfStaleAsync(ModelVersion version, CancellationToken cancellationToken) =>
        IsStale(version) ? await ExpireAsync(version, cancellationToken).ConfigureAwait(false) ?? version : version;

    /// <summary>
    /// PENDING → FAILED for an abandoned upload, then deletes whatever checkpoint bytes it may have committed. Returns
    /// the FAILED version, or null if it had moved on or was deleted meanwhile (then someone else settled it).
    /// </summary>
    private async Task<ModelVersion?> ExpireAsync(ModelVersion stale, CancellationToken cancellationToken)
    {
        var reason = $"The checkpoint upload did not complete within {Durations.Describe(_options.PendingTimeout)} (the registering " +
            "process stopped or lost its connection); register again — the same idempotency key may be reused.";
        Updated<ModelVersion> updated;
        try
        {
            updated = await _store.UpdateAsync<ModelVersion>(RegistryLayout.VersionDocument(stale.ModelName, stale.Version),
                version => IsStale(version)
                    ? version with { Status = ModelVersionStatus.Failed, StatusMessage = reason, UpdatedAt = _time.GetUtcNow(), UpdatedBy = SystemActor }
                    : null,
                () => VersionNotFound(stale.ModelName, stale.Version), cancellationToken).ConfigureAwait(false);
        }
        catch (IfcbException e) when (e.Kind == ErrorKind.NotFound)
        {
            return null;
        }

        if (!updated.Changed)
        {
            return updated.Value;
        }

        await _store.DeleteAsync(updated.Value.CheckpointBlob, cancellationToken).ConfigureAwait(false);
        await AuditAsync(stale.ModelName, SystemActor, AuditAction.VersionFailed, stale.Version, null,
            [("reason", reason), ("expired", "true")], cancellationToken).ConfigureAwait(false);
        return updated.Value;
    }

    private async Task<ModelVersion> WithAliasesAsync(ModelVersion version, CancellationToken cancellationToken)
    {
        var model = await _store.ReadAsync<RegisteredModel>(RegistryLayout.ModelDocument(version.ModelName), cancellationToken)
            .ConfigureAwait(false);
        return model is null ? version : WithAliases(version, model.Value);
    }

    private static ModelVersion WithAliases(ModelVersion version, RegisteredModel model) =>
        version with { Aliases = [.. model.Aliases.Where(a => a.Value == version.Version).Select(a => a.Key)] };

    private async Task<List<int>> ListVersionNumbersAsync(string modelName, CancellationToken cancellationToken)
    {
        var names = await _store.ListBlobNamesAsync(RegistryLayout.VersionsPrefix(modelName), cancellationToken).ConfigureAwait(false);
        return names.Select(name => RegistryLayout.VersionFromDocument(modelName, name)).OfType<int>().Order().ToList();
    }

    private Task AuditAsync(
        RegisteredModel model, string actor, AuditAction action, int? version, (string Key, string Value)[] details,
        CancellationToken cancellationToken) =>
        AuditAsync(model.Name, actor, action, version, model.Revision, details, cancellationToken);

    private async Task AuditAsync(
        string modelName, string actor, AuditAction action, int? version, long? modelRevision, (string Key, string Value)[] details,
        CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var entry = new AuditEntry
        {
            ModelName = modelName, Timestamp = now, Actor = actor, Action = action, Version = version, ModelRevision = modelRevision,
            Details = details.ToImmutableSortedDictionary(d => d.Key, d => d.Value, StringComparer.Ordinal),
        };
        // A fresh guid per entry makes name collisions impossible; If-None-Match keeps the log append-only anyway.
        await _store.TryCreateAsync(RegistryLayout.AuditEntry(modelName, now), entry, cancellationToken).ConfigureAwait(false);
    }

    private static IfcbException ModelNotFound(string name) =>
        new(ErrorKind.NotFound, $"Registered model '{name}' does not exist; create it first.");

    private static IfcbException VersionNotFound(string name, int version) =>
        new(ErrorKind.NotFound, $"Version {version} of model '{name}' does not exist.");
}
