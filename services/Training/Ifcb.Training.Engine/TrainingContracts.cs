using Ifcb.Data.Datasets;
using Ifcb.Data.Loading;
using Ifcb.Models;

namespace Ifcb.Training.Engine;

/// <summary>Where a training run writes its outputs and reads its resume state: a folder locally, blobs in the service.</summary>
public interface IArtifactSink
{
    Task WriteAsync(string name, ReadOnlyMemory<byte> content, CancellationToken cancellationToken);

    /// <summary>The artifact's bytes, or null when it does not exist.</summary>
    Task<byte[]?> ReadAsync(string name, CancellationToken cancellationToken);
}

/// <summary>Progress callbacks; called on the training thread between steps, so keep them quick.</summary>
public interface ITrainingObserver
{
    /// <summary>Before the first epoch; <paramref name="firstEpoch"/> is above 0 when the run resumes.</summary>
    ValueTask OnStartAsync(int firstEpoch, CancellationToken cancellationToken);

    ValueTask OnBatchAsync(BatchProgress progress, CancellationToken cancellationToken);

    /// <summary>After the epoch's artifacts (and resume state) are written.</summary>
    ValueTask OnEpochAsync(EpochRecord epoch, CancellationToken cancellationToken);
}

public sealed record BatchProgress(int Epoch, int Batch, int BatchesPerEpoch, double ImagesPerSecond, double RunningTrainLoss);

/// <summary>
/// One row of epochs.csv: neuston's columns plus the per-sample mean val loss, accuracy, timing and the learning rate
/// the epoch trained with (null in records written before it was recorded).
/// </summary>
public sealed record EpochRecord(
    int Epoch,
    bool Best,
    double TrainLoss,
    double ValLoss,
    double ValLossMean,
    double F1Macro,
    double F1Weighted,
    double Accuracy,
    double Seconds,
    double ImagesPerSecond,
    double? LearningRate = null);

/// <summary>Everything a run needs besides its options: the split dataset, where pixels come from, how to build the model.</summary>
public sealed record TrainingInputs(
    TrainingOptions Options,
    long Seed,
    IReadOnlyList<string> Classes,
    DatasetSpec Training,
    DatasetSpec Validation,
    IImageSource Images,
    Func<CancellationToken, Task<ClassifierNet>> CreateModel,
    string? DatasetFingerprint = null,
    Func<string, string>? DisplayPath = null);

/// <summary>How a run ended.</summary>
public sealed record TrainingResult(
    IReadOnlyList<EpochRecord> Epochs,
    int BestEpoch,
    ClassificationMetrics? BestMetrics,
    string BestCheckpointName,
    bool Cancelled,
    int ResumedFromEpoch);
