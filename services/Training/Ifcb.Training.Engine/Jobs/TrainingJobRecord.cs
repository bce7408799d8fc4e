using System.Globalization;
using System.Text.Json.Serialization;
using Ifcb.Contracts;
using Ifcb.Data.Datasets;
using Ifcb.Data.Imaging;
using Ifcb.Platform;
using Ifcb.Platform.Jobs;

namespace Ifcb.Training.Engine.Jobs;

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
    public int BatchSize { get; init; } = Defaults.BatchSize;
    public bool Swap { get; init; }
    public int? Resize { get; init; }
    public string? ModelId { get; init; }
    public string? RegisterAs { get; init; }
    public string Device { get; init; } = "auto";
    /// <summary>Initial learning rate; null = neuston's 1e-3.</summary>
    public double? LearningRate { get; init; }
    /// <summary>"adam", "adamw" or "sgd"; null = adam.</summary>
    public string? Optimizer { get; init; }
    /// <summary>null = the optimiser's default.</summary>
    public double? WeightDecay { get; init; }
    /// <summary>"none", "plateau" or "cosine"; null = none.</summary>
    public string? LrSchedule { get; init; }
    /// <summary>"none", "balanced" or "file" (with <see cref="ClassWeightsCsv"/>); null = none.</summary>
    public string? ClassWeights { get; init; }
    /// <summary>The <c>class,weight</c> CSV text for class weights "file".</summary>
    public string? ClassWeightsCsv { get; init; }
    /// <summary>"none" or "balanced"; null = none.</summary>
    public string? Sampler { get; init; }
    /// <summary>The registered version to fine-tune from, as the user named it (NAME, NAME/VERSION, NAME@ALIAS); null = none.</summary>
    public string? From { get; init; }
    /// <summary>The exact version <see cref="From"/> resolved to at submission (NAME/VERSION): what the worker loads.</summary>
    public string? FromVersion { get; init; }
    /// <summary>"none" or "features"; null = none.</summary>
    public string? Freeze { get; init; }
    public int? FreezeEpochs { get; init; }
    /// <summary>The sweep this job is a trial of; null for a job started on its own. A trial registers only if it wins.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? SweepId { get; init; }
    /// <summary>
    /// The norm-stats job that img_norm=auto asks (shared by a sweep's trials of one input size); null = one derived
    /// from the training job's id.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? NormStatsJobId { get; init; }

    /// <summary>
    /// Checks the request as a client sent it — names (one rule for every name that becomes a blob path or a registry
    /// name), the size of every string, and every option through <see cref="ToOptions"/> — so that a job accepted at
    /// submission never fails later on its input.
    /// </summary>
    /// <exception cref="ArgumentException">Or IfcbException InvalidArgument: names the field and the limit.</exception>
    public TrainingOptions Validate()
    {
        ResourceName.ValidateDatasetName(Dataset);
        if (RegisterAs is not null)
            ResourceName.ValidateModelName(RegisterAs, "register_as");
        Limits.CheckText(ImgNorm, "img_norm");
        Limits.CheckText(Split, "split", 32);
        Limits.CheckText(Flip, "flip", 32);
        Limits.CheckText(Device, "device", 32);
        Limits.CheckText(Optimizer, "optimizer", 32);
        Limits.CheckText(LrSchedule, "lr_schedule", 32);
        Limits.CheckText(ClassWeights, "class_weights", 32);
        Limits.CheckText(Sampler, "sampler", 32);
        Limits.CheckText(From, "from", 2 * ResourceName.MaxModelNameLength + 1);
        Limits.CheckText(Freeze, "freeze", 32);
        if (ClassWeightsCsv is { Length: > Limits.MaxClassConfigBytes })
            throw IfcbException.InvalidArgument(
                $"class_weights_csv has {ClassWeightsCsv.Length} characters; the limit is {Limits.MaxClassConfigBytes} " +
                $"(limit {nameof(Limits.MaxClassConfigBytes)}).");
        Limits.CheckText(ClassConfigColumn, "class_config_column", ResourceName.MaxSegmentLength);
        if (ClassConfigCsv is { Length: > Limits.MaxClassConfigBytes })
            throw IfcbException.InvalidArgument(
                $"class_config_csv has {ClassConfigCsv.Length} characters; the limit is {Limits.MaxClassConfigBytes} " +
                $"(limit {nameof(Limits.MaxClassConfigBytes)}).");
        if (ClassMin is < 0 or > 1_000_000)
            throw IfcbException.InvalidArgument($"class_min is {ClassMin}; use 0 to 1000000.");
        return ToOptions();
    }

    public bool WantsAutoImgNorm => string.Equals(ImgNorm?.Trim(), "auto", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The engine options; <paramref name="resolvedImgNorm"/> replaces "auto".
    /// </summary>
    /// <exception cref="ArgumentException">Any option is invalid (the message names it and the fix).</exception>
    /// <param name="from">The parent checkpoint, fetched by the worker, when <see cref="FromVersion"/> is set.</param>
    public TrainingOptions ToOptions(ImgNorm? resolvedImgNorm = null, WarmStartSource? from = null)
    {
        ImgNorm? norm;
        try
        {
            norm = WantsAutoImgNorm ? resolvedImgNorm : string.IsNullOrWhiteSpace(ImgNorm) ? null : Ifcb.Contracts.ImgNorm.Parse(ImgNorm);
        }
        catch (FormatException e)
        {
            throw new ArgumentException(e.Message, nameof(ImgNorm), e);
        }
        SplitRatio split;
        FlipOption flip;
        var optimizer = Optimization.ParseOptimizer(Optimizer);
        var schedule = Optimization.ParseSchedule(LrSchedule);
        var classWeights = Engine.ClassWeights.Parse(ClassWeights, ClassWeightsCsv);
        var sampler = Engine.ClassWeights.ParseSampler(Sampler);
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
            Pretrained = Pretrained && From is null,
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
            LearningRate = LearningRate ?? Optimization.DefaultLearningRate,
            Optimizer = optimizer,
            WeightDecay = WeightDecay,
            LrSchedule = schedule,
            ClassWeights = classWeights,
            Sampler = sampler,
            From = from,
            FreezeFeatures = Freeze?.Trim() switch
            {
                null or "" or "none" => false,
                "features" => true,
                _ => throw new ArgumentException($"freeze '{Freeze}' is not one of none, features.", nameof(Freeze)),
            },
            FreezeEpochs = FreezeEpochs,
        };
        options.Validate();
        return options;
    }
}

/// <summary>
/// A training job as stored in blob storage (jobs/{id}/job.json): the system of record for its state. State changes
/// are the kernel's transitions (<see cref="JobRecord{TSelf}"/>); this record adds what training reports.
/// </summary>
public sealed record TrainingJobRecord : JobRecord<TrainingJobRecord>
{
    public required TrainingRequestSpec Request { get; init; }
    public int Epoch { get; init; }
    public int Batch { get; init; }
    public int BatchesPerEpoch { get; init; }
    public double ImagesPerSecond { get; init; }
    public List<EpochRecord> Epochs { get; init; } = [];
    public int BestEpoch { get; init; } = -1;
    public string? DatasetFingerprint { get; init; }
    /// <summary>The normalisation the job trains with (given, or computed by NormStats for "auto"); null for none.</summary>
    public ImgNorm? ImgNorm { get; init; }
    public List<string>? Classes { get; init; }
    /// <summary>With a warm start: the parent's layout flag, which the trained checkpoint keeps (reported as pretrained).</summary>
    public bool? ParentPretrained { get; init; }
    public string? BestCheckpoint { get; init; }
    public string? CheckpointSha256 { get; init; }
    public long CheckpointSize { get; init; }
    /// <summary>Epochs already completed when the latest attempt started (above 0 after a resume).</summary>
    public int ResumedFromEpoch { get; init; }
    /// <summary>When ModelTrained was last sent to the Registry (the reconciler sends it again until it hears back).</summary>
    public DateTimeOffset? ModelTrainedSentAt { get; init; }
    /// <summary>"name/version" once the Registry registered the best checkpoint.</summary>
    public string? RegisteredVersion { get; init; }
    /// <summary>Why the Registry refused the checkpoint for good (the job itself still SUCCEEDED).</summary>
    public string? RegistrationError { get; init; }

    public override string DescribeProgress() => Epochs.Count == 0 && Batch == 0
        ? "the start of training (no epoch completed)"
        : string.Create(CultureInfo.InvariantCulture,
            $"epoch {Epoch} (batch {Batch} of {BatchesPerEpoch}; {Epochs.Count} epochs completed)");

    /// <summary>
    /// Whether the job's checkpoint goes to the Registry when it succeeds: always, except for a sweep's trial, which is
    /// registered only once its sweep chose it as the winner (<see cref="ChosenAsSweepWinner"/>).
    /// </summary>
    [JsonIgnore]
    public bool Registers => Request.SweepId is null || Request.RegisterAs is not null;

    /// <summary>A succeeded job stays on the reconciler's list until the Registry registered (or refused) its checkpoint.</summary>
    public override bool NeedsFollowUp() =>
        State == JobState.Succeeded && Registers && RegisteredVersion is null && RegistrationError is null;

    /// <summary>The succeeded trial its sweep chose as the winner: registered under <paramref name="registerAs"/>.</summary>
    /// <exception cref="IfcbException">
    /// FailedPrecondition: not a succeeded trial, or a trial already registered under another name.
    /// </exception>
    public TrainingJobRecord ChosenAsSweepWinner(string registerAs)
    {
        if (Request.SweepId is null || State != JobState.Succeeded)
            throw IfcbException.FailedPrecondition($"Job {JobId} is not a succeeded sweep trial; it cannot be registered as its winner.");
        if (Request.RegisterAs is { } name && name != registerAs)
            throw IfcbException.FailedPrecondition($"Trial {JobId} is already registered as '{name}'.");
        return this with { Request = Request with { RegisterAs = registerAs } };
    }
}
