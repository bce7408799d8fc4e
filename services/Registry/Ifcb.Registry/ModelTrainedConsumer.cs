using System.Collections.Immutable;
using Azure.Storage.Blobs;
using Ifcb.Contracts;
using Ifcb.Registry.Engine;
using MassTransit;

namespace Ifcb.Registry;

/// <summary>
/// Registers the best checkpoint of every finished training job. Idempotent on the job id (key "training:JOB"), so
/// a redelivered <see cref="ModelTrained"/> returns the version registered the first time instead of adding one.
/// The model is <c>RegisterAs</c> if the job named one, else the job's model id; it is created if missing.
/// </summary>
public sealed class ModelTrainedConsumer(ModelRegistry registry, BlobServiceClient blobs, RegistryEvents events, RegistryLimits limits,
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

        // The registry refuses non-finite metrics, and a diverged run can report a NaN loss; keep the rest.
        var metrics = trained.Metrics.Where(m => double.IsFinite(m.Value)).ToImmutableSortedDictionary(m => m.Key, m => m.Value, StringComparer.Ordinal);
        if (metrics.Count < trained.Metrics.Count)
            logger.LogWarning("Training job {JobId}: metrics {Metrics} are not finite and are not registered", trained.JobId,
                string.Join(", ", trained.Metrics.Keys.Except(metrics.Keys)));

        var request = new NewModelVersion
        {
            Arch = trained.Architecture,
            Classes = [.. trained.Classes],
            ImgNorm = trained.ImgNormMean is { } mean && trained.ImgNormStd is { } std ? RegistryProtoMapping.ImgNorm(mean, std) : null,
            Pretrained = trained.Pretrained,
            Resize = trained.Resize,
            Metrics = metrics,
            Tags = ImmutableSortedDictionary.CreateRange(StringComparer.Ordinal, new Dictionary<string, string>
            {
                ["train_id"] = trained.TrainId,
                ["dataset"] = trained.Dataset,
                ["best_epoch"] = trained.BestEpoch.ToString(System.Globalization.CultureInfo.InvariantCulture),
            }),
            Source = new VersionSource { TrainingJobId = trained.JobId },
            DatasetFingerprint = trained.DatasetFingerprint,
            Sha256 = trained.CheckpointSha256,
            SizeBytes = trained.CheckpointSize,
            IdempotencyKey = IdempotencyKey(trained.JobId),
        };
        RegistryValidation.ModelName(name);
        // Checked before the model is created, as for CI uploads.
        RegistryValidation.NewVersion(request, limits.MaxCheckpointBytes);

        await registry.EnsureModelAsync(name, Actor, cancellationToken);
        var checkpoint = blobs.GetBlobContainerClient(trained.CheckpointContainer).GetBlobClient(trained.CheckpointBlob);
        await using var content = (await checkpoint.DownloadStreamingAsync(cancellationToken: cancellationToken)).Value.Content;
        var registration = await registry.RegisterVersionAsync(name, request, content, Actor, cancellationToken);
        await events.VersionRegisteredAsync(registration.Version, Actor, cancellationToken);
        logger.LogInformation("Training job {JobId} {Outcome} as {Model}/{Version}", trained.JobId,
            registration.AlreadyRegistered ? "was already registered" : "registered", name, registration.Version.Version);
    }
}
