using System.Collections.Immutable;
using System.Globalization;
using Azure.Storage.Blobs;
using Ifcb.Contracts;
using Ifcb.Platform;
using Ifcb.Registry.Engine;
using MassTransit;

namespace Ifcb.Registry;

/// <summary>
/// Registers the best checkpoint of every finished training job. Idempotent on the job id (key "training:JOB"), so
/// a redelivered <see cref="ModelTrained"/> returns the version registered the first time, without looking at the
/// checkpoint again, and announces it again (a Training job that missed the first announcement learns its version).
/// The model is <c>RegisterAs</c> if the job named one, else the job's model id; it is created if missing. The
/// checkpoint is copied by the storage service through the read grant Training sent (<see cref="ModelTrained.CheckpointUri"/>,
/// <see cref="ModelRegistry.RegisterVersionFromBlobAsync"/>), with the sha256 and size Training recorded when it wrote it.
/// </summary>
/// <remarks>
/// Failures come in two kinds. Transient ones (storage or broker down, a concurrent writer: <see cref="Faults.IsTransient"/>)
/// are thrown, so MassTransit retries the message. Everything else cannot be fixed by retrying the same message (a
/// name the registry refuses, a checkpoint that is missing, too large, corrupt or contradicts the job's metadata):
/// it is announced as <see cref="ModelRegistrationFailed"/> and the message is consumed, instead of dying silently
/// in the error queue while the job waits for a version that will never come.
/// </remarks>
public sealed class ModelTrainedConsumer(ModelRegistry registry, RegistryEvents events, RegistryLimits limits, VersionLineage lineage,
    ILogger<ModelTrainedConsumer> logger) : IConsumer<ModelTrained>
{
    /// <summary>The audit-log actor for automatic registrations.</summary>
    public const string Actor = "training-service";

    public static string IdempotencyKey(string jobId) => "training:" + jobId;

    public async Task Consume(ConsumeContext<ModelTrained> context)
    {
        var trained = context.Message;
        var cancellationToken = context.CancellationToken;
        var name = string.IsNullOrWhiteSpace(trained.RegisterAs) ? trained.ModelId : trained.RegisterAs;
        VersionRegistration registration;
        try
        {
            registration = await RegisterAsync(trained, name, cancellationToken);
        }
        catch (Exception e) when (!Faults.IsTransient(e) && !(e is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            var reason = Faults.Reason(e);
            if (e is IfcbException)
                logger.LogWarning("Training job {JobId} cannot be registered as {Model}: {Reason}", trained.JobId, name, reason);
            else
                logger.LogError(e, "Training job {JobId} cannot be registered as {Model} (unexpected failure)", trained.JobId, name);
            if (ModelRegistry.FailedVersionOf(e) is { } failed)
                await events.VersionFailedAsync(failed, Actor);
            await events.RegistrationFailedAsync(trained.JobId, name, reason, cancellationToken);
            return;
        }

        await events.VersionRegisteredAsync(registration.Version, Actor, cancellationToken);
        if (trained.ParentVersion is { } parent)
            await RecordChildAsync(parent, name, registration.Version.Version, cancellationToken);
        if (registration.Version.Status == ModelVersionStatus.Pending)
            // The first delivery is still uploading (it announces the version when READY), or it died: then the version
            // expires after the registry's PendingTimeout and the next ModelTrained for this job registers afresh.
            logger.LogInformation("Training job {JobId}: version {Model}/{Version} is still being registered by an earlier delivery",
                trained.JobId, name, registration.Version.Version);
        else
            logger.LogInformation("Training job {JobId} {Outcome} as {Model}/{Version}", trained.JobId,
                registration.AlreadyRegistered ? "was already registered" : "registered", name, registration.Version.Version);
    }

    /// <summary>Lineage the other way: the parent lists the version fine-tuned from it (a deleted parent lists nothing).</summary>
    private async Task RecordChildAsync(string parent, string name, int version, CancellationToken cancellationToken)
    {
        try
        {
            await lineage.RecordChildAsync(ModelRef.Parse(parent), ModelRef.ToVersion(name, version), DateTimeOffset.UtcNow,
                cancellationToken);
        }
        catch (Exception e) when (e is IfcbException or FormatException)
        {
            logger.LogWarning("{Model}/{Version} was not listed as a child of {Parent}: {Reason}", name, version, parent, e.Message);
        }
    }

    private async Task<VersionRegistration> RegisterAsync(ModelTrained trained, string name, CancellationToken cancellationToken)
    {
        // The registry refuses non-finite metrics, and a diverged run can report a NaN loss; keep the rest.
        var metrics = trained.Metrics.Where(m => double.IsFinite(m.Value))
            .ToImmutableSortedDictionary(m => m.Key, m => m.Value, StringComparer.Ordinal);
        if (metrics.Count < trained.Metrics.Count)
            logger.LogWarning("Training job {JobId}: metrics {Metrics} are not finite and are not registered", trained.JobId,
                string.Join(", ", trained.Metrics.Keys.Except(metrics.Keys)));

        var request = new NewModelVersion
        {
            Arch = trained.Architecture,
            Classes = [.. trained.Classes],
            ImgNorm = trained.ImgNorm,
            Pretrained = trained.Pretrained,
            Resize = trained.Resize,
            Metrics = metrics,
            Tags = ImmutableSortedDictionary.CreateRange(StringComparer.Ordinal, new Dictionary<string, string>
            {
                ["train_id"] = trained.TrainId,
                ["dataset"] = trained.Dataset,
                ["best_epoch"] = trained.BestEpoch.ToString(CultureInfo.InvariantCulture),
            }),
            Source = new VersionSource { TrainingJobId = trained.JobId, ParentVersion = trained.ParentVersion },
            DatasetFingerprint = trained.DatasetFingerprint,
            Sha256 = trained.CheckpointSha256,
            SizeBytes = trained.CheckpointSize,
            IdempotencyKey = IdempotencyKey(trained.JobId),
        };
        RegistryValidation.ModelName(name);
        // Checked before the model is created, as for CI uploads.
        RegistryValidation.NewVersion(request, limits.MaxCheckpointBytes);

        await registry.EnsureModelAsync(name, Actor, cancellationToken);
        // Copied inside storage through Training's read grant: the checkpoint's bytes never pass through this process.
        var checkpoint = new BlobClient(trained.CheckpointUri, BlobExtensions.ClientOptions());
        return await registry.RegisterVersionFromBlobAsync(name, request, checkpoint, Actor, cancellationToken);
    }
}
