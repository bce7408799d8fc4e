namespace Ifcb.Contracts;

/// <summary>Command: run (or resume) training job <paramref name="JobId"/>. The job's options live in its job record.</summary>
public sealed record TrainModel(string JobId);

/// <summary>Event: a training job made progress (published after each epoch and every few seconds within one).</summary>
public sealed record TrainingProgressed(
    string JobId,
    int Epoch,
    int Batch,
    int BatchesPerEpoch,
    double ImagesPerSecond,
    double? TrainLoss,
    double? ValLoss,
    double? F1Weighted,
    string Worker);

/// <summary>
/// Event: a training job succeeded. Carries everything the registry needs to register the best checkpoint.
/// <paramref name="CheckpointUri"/> is a read-only grant (a SAS URI, valid for days) to the checkpoint blob, which
/// Training owns: the Registry copies it server-side from there and never names Training's containers. Every resend
/// carries a fresh grant.
/// </summary>
public sealed record ModelTrained(
    string JobId,
    string TrainId,
    string ModelId,
    string Architecture,
    IReadOnlyList<string> Classes,
    ImgNorm? ImgNorm,
    bool Pretrained,
    int Resize,
    long Seed,
    string Dataset,
    string? DatasetFingerprint,
    int BestEpoch,
    IReadOnlyDictionary<string, double> Metrics,
    Uri CheckpointUri,
    string CheckpointSha256,
    long CheckpointSize,
    string? RegisterAs,
    string? ParentVersion = null);

/// <summary>Event: a training job failed for good (bad data, missing weights, a crash that retries did not fix).</summary>
public sealed record TrainingFailed(string JobId, string Reason);

/// <summary>Event: a training job was cancelled by a user; its partial artifacts are kept.</summary>
public sealed record TrainingCancelled(string JobId, int EpochsCompleted);

/// <summary>Command: run (neuston RUN) job <paramref name="JobId"/> on a Training worker; its request lives in its job record.</summary>
public sealed record RunModel(string JobId);

/// <summary>
/// Event: one bin of a platform run was classified by the exact version <paramref name="ModelVersion"/> (NAME/N); its
/// outputs are the listed blobs.
/// </summary>
public sealed record BinsClassified(string JobId, string RunId, string BinId, ModelRef ModelVersion, int Rois,
    string OutputContainer, IReadOnlyList<string> OutputBlobs);

/// <summary>Event: a platform run ended (state succeeded, failed or cancelled).</summary>
public sealed record RunFinished(string JobId, string RunId, string State, int Completed, int Failed);

/// <summary>
/// Request (request/response) to the Training service, which owns the datasets: read access to dataset
/// <paramref name="Dataset"/> for another service (NormStats computes its statistics). Answered with
/// <see cref="DatasetReadGrant"/>.
/// </summary>
public sealed record GrantDatasetRead(string Dataset);

/// <summary>
/// Read-only access to the datasets until <paramref name="ExpiresOn"/>: <paramref name="ContainerUri"/> is a SAS URI
/// of the container that holds them in the layout of <c>Ifcb.Data.Datasets.BlobDatasetStore</c>. Ask again before it
/// expires.
/// </summary>
public sealed record DatasetReadGrant(string Dataset, Uri ContainerUri, DateTimeOffset ExpiresOn);

/// <summary>
/// Event: platform job <paramref name="JobId"/> (<paramref name="Kind"/> <c>run</c> or <c>evaluate</c>) is using registered
/// version <paramref name="ModelVersion"/>; the Registry records it as lineage (Registry.GetLineage).
/// </summary>
public sealed record ModelVersionUsed(string JobId, ModelRef ModelVersion, string Kind, DateTimeOffset At);

/// <summary>
/// Event: a platform RUN with evaluate scored registered version <paramref name="ModelVersion"/> on labelled dataset
/// <paramref name="Dataset"/> (its content <paramref name="DatasetFingerprint"/>). <paramref name="ReportJson"/> is the
/// whole evaluation report (the run's evaluation.json): per-class precision/recall/F1/support and the confusion
/// matrix. The Registry keeps it on the version, one record per dataset fingerprint.
/// </summary>
public sealed record ModelEvaluated(
    string JobId,
    ModelRef ModelVersion,
    string Dataset,
    string DatasetFingerprint,
    int Images,
    double Accuracy,
    double F1Weighted,
    double F1Macro,
    DateTimeOffset EvaluatedAt,
    string ReportJson);
