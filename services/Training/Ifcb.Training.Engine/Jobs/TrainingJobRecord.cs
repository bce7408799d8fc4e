using Ifcb.Data;
using Ifcb.Data.Datasets;
using Ifcb.Data.Imaging;

namespace Ifcb.Training.Engine.Jobs;

public enum TrainingJobState { Queued, Running, Succeeded, Failed, Cancelled }

/// <summary>
/// What a user asked for, as stored with the job (neuston TRAIN's flags; the seed is already resolved so that a
/// resumed job uses the same split and shuffles).
/// </summary>
public sealed record TrainingRequestSpec
{
    public required string Dataset { get; init; }
    public required string Architecture { get; init; }
    public required string TrainId { get; init; }
    public bool Pretrained { get; init; } = true;
    /// <summary>"MEAN STD", "auto" (resolved by the worker via NormStats) or null.</summary>
    public string? ImgNorm { get; init; }
    public long Seed { get; init; }
    public string Split { get; init; } = "80:20";
    public string? ClassConfigCsv { get; init; }
    public string? ClassConfigColumn { get; init; }
    public int ClassMin { get; init; } = 2;
    public int? ClassMax { get; init; }
    public int Emax { get; init; } = 60;
    public int Emin { get; init; } = 10;
    public int Estop { get; init; } = 10;
    public string? Flip { get; init; }
    public int BatchSize { get; init; } = 108;
    public bool Swap { get; init; }
    public int? Resize { get; init; }
    public string? ModelId { get; init; }
    public string? RegisterAs { get; init; }
    public string Device { get; init; } = "auto";

    public bool WantsAutoImgNorm => string.Equals(ImgNorm?.Trim(), "auto", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The engine options; <paramref name="resolvedImgNorm"/> replaces "auto".
    /// </summary>
    /// <exception cref="ArgumentException">Any option is invalid (the message names it and the fix).</exception>
    public TrainingOptions ToOptions(ImgNorm? resolvedImgNorm = null)
    {
        ImgNorm? norm;
        try
        {
            norm = WantsAutoImgNorm ? resolvedImgNorm : string.IsNullOrWhiteSpace(ImgNorm) ? null : Ifcb.Data.ImgNorm.Parse(ImgNorm);
        }
        catch (FormatException e)
        {
            throw new ArgumentException(e.Message, nameof(ImgNorm), e);
        }
        SplitRatio split;
        FlipOption flip;
        ClassConfig? classConfig = null;
        try
        {
            split = SplitRatio.Parse(Split);
            flip = FlipOption.Parse(Flip);
            if (!string.IsNullOrWhiteSpace(ClassConfigCsv))
            {
                if (string.IsNullOrWhiteSpace(ClassConfigColumn))
                    throw new ArgumentException("class_config_column is required with class_config_csv: name the CSV column to use.");
                classConfig = ClassConfig.Parse(ClassConfigCsv, ClassConfigColumn);
            }
        }
        catch (FormatException e)
        {
            throw new ArgumentException(e.Message, e);
        }
        var options = new TrainingOptions
        {
            Architecture = Architecture,
            TrainId = TrainId,
            Pretrained = Pretrained,
            ImgNorm = norm,
            Seed = Seed,
            Split = split,
            ClassConfig = classConfig,
            ClassMin = ClassMin,
            ClassMax = ClassMax,
            Emax = Emax,
            Emin = Emin,
            Estop = Estop,
            Flip = flip,
            BatchSize = BatchSize,
            Swap = Swap,
            Resize = Resize,
            ModelId = ModelId,
            Device = Device,
        };
        options.Validate();
        return options;
    }
}

/// <summary>A training job as stored in blob storage (jobs/{id}/job.json): the system of record for its state.</summary>
public sealed record TrainingJobRecord : IJobRecord
{
    public required string JobId { get; init; }
    public TrainingJobState State { get; init; } = TrainingJobState.Queued;
    public required TrainingRequestSpec Request { get; init; }
    public int Epoch { get; init; }
    public int Batch { get; init; }
    public int BatchesPerEpoch { get; init; }
    public double ImagesPerSecond { get; init; }
    public List<EpochRecord> Epochs { get; init; } = [];
    public int BestEpoch { get; init; } = -1;
    public string? Worker { get; init; }
    public string? Error { get; init; }
    public DateTimeOffset CreatedAt { get; init; } = DateTimeOffset.UtcNow;
    public DateTimeOffset UpdatedAt { get; init; } = DateTimeOffset.UtcNow;
    public string? DatasetFingerprint { get; init; }
    public double[]? ImgNormMean { get; init; }
    public double[]? ImgNormStd { get; init; }
    public List<string>? Classes { get; init; }
    public string? BestCheckpoint { get; init; }
    public string? RegisteredVersion { get; init; }
    public int Attempts { get; init; }
    /// <summary>Epochs already completed when the latest attempt started (above 0 after a resume).</summary>
    public int ResumedFromEpoch { get; init; }
    public bool CancelRequested { get; init; }

    public bool IsTerminal => State is TrainingJobState.Succeeded or TrainingJobState.Failed or TrainingJobState.Cancelled;

    public IJobRecord Touched(DateTimeOffset at) => this with { UpdatedAt = at };
}
