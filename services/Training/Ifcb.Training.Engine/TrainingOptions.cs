using Ifcb.Contracts;
using Ifcb.Data.Datasets;
using Ifcb.Data.Imaging;
using Ifcb.Models;
using Ifcb.Platform;

namespace Ifcb.Training.Engine;

/// <summary>
/// neuston TRAIN's options (upstream parser neuston_net.py:311-389) with its defaults. <see cref="Validate"/> checks
/// them all up front and throws <see cref="ArgumentException"/> with a message that says what to fix.
/// </summary>
public sealed record TrainingOptions
{
    public required string Architecture { get; init; }
    public required string TrainId { get; init; }
    /// <summary>neuston's <c>pretrained</c> (true unless <c>--untrain</c>).</summary>
    public bool Pretrained { get; init; } = true;
    public ImgNorm? ImgNorm { get; init; }
    /// <summary>0 = pick a random seed (recorded in the outputs).</summary>
    public long Seed { get; init; }
    public SplitRatio Split { get; init; } = SplitRatio.Default;
    public ClassConfig? ClassConfig { get; init; }
    public int ClassMin { get; init; } = 2;
    public int? ClassMax { get; init; }
    public int Emax { get; init; } = 60;
    public int Emin { get; init; } = 10;
    /// <summary>Early-stopping patience in epochs; 0 disables early stopping (neuston <c>--estop 0</c>).</summary>
    public int Estop { get; init; } = 10;
    public FlipOption Flip { get; init; } = FlipOption.None;
    public int BatchSize { get; init; } = Defaults.BatchSize;
    public bool Swap { get; init; }
    /// <summary>Input side; null = the architecture's (299 for inception, 224 otherwise).</summary>
    public int? Resize { get; init; }
    /// <summary>null = <see cref="TrainId"/>.</summary>
    public string? ModelId { get; init; }
    public string Device { get; init; } = "auto";
    /// <summary>Image decode threads; 0 = one per core.</summary>
    public int DecodeWorkers { get; init; }
    /// <summary><c>--lr</c>: the initial learning rate (neuston's 1e-3).</summary>
    public double LearningRate { get; init; } = Optimization.DefaultLearningRate;
    /// <summary><c>--optimizer</c> (neuston: Adam).</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Adam;
    /// <summary><c>--weight-decay</c>; null = the optimiser's default (<see cref="EffectiveWeightDecay"/>).</summary>
    public double? WeightDecay { get; init; }
    /// <summary><c>--lr-schedule</c> (neuston: none).</summary>
    public LrSchedule LrSchedule { get; init; } = LrSchedule.None;

    /// <summary><c>--class-weights</c>: weights of the training loss per class (neuston: none). Validation is unweighted.</summary>
    public ClassWeights ClassWeights { get; init; } = ClassWeights.None;
    /// <summary><c>--sampler</c>: how each epoch draws its training images (neuston: each once, shuffled).</summary>
    public SamplerKind Sampler { get; init; } = SamplerKind.None;

    /// <summary>The weight decay the optimiser uses: <see cref="WeightDecay"/>, else its default.</summary>
    public double EffectiveWeightDecay => Optimization.EffectiveWeightDecay(Optimizer, WeightDecay);

    public int EffectiveResize => Resize ?? ModelZoo.InputSize(Architecture);
    public string EffectiveModelId => string.IsNullOrWhiteSpace(ModelId) ? TrainId : ModelId;

    public DatasetOptions DatasetOptions(int seed) => new(ClassMin, ClassMax, ClassConfig, seed);

    /// <summary>Checks every option; throws <see cref="ArgumentException"/> naming the option and the fix.</summary>
    public void Validate()
    {
        if (!ModelZoo.Architectures.Contains(Architecture))
            throw new ArgumentException(
                $"Unknown model '{Architecture}'. Choose one of: {string.Join(", ", ModelZoo.Architectures)}.", nameof(Architecture));
        if (Pretrained && !ModelZoo.SupportsPretrained(Architecture))
            throw new ArgumentException(
                $"'{Architecture}' has no pretrained ImageNet weights on this platform; " +
                "set untrain (--untrain) to train it from random weights.",
                nameof(Pretrained));
        // TRAIN_ID and model_id become folder, file and blob names, and (unless register_as is given) the registered
        // model's name: one rule for all of them, the registry's.
        ResourceName.ValidateModelName(TrainId, "TRAIN_ID");
        if (!string.IsNullOrWhiteSpace(ModelId))
            ResourceName.ValidateModelName(ModelId, "model_id");
        if (Emax is < 1 or > Limits.MaxEpochs)
            throw new ArgumentException(
                $"emax is {Emax}; it must be between 1 and {Limits.MaxEpochs} (limit {nameof(Limits.MaxEpochs)}).", nameof(Emax));
        if (Emin is < 1 or > Limits.MaxEpochs)
            throw new ArgumentException(
                $"emin is {Emin}; it must be between 1 and {Limits.MaxEpochs} (limit {nameof(Limits.MaxEpochs)}).", nameof(Emin));
        if (Emin > Emax)
            throw new ArgumentException($"emin ({Emin}) is greater than emax ({Emax}); lower emin or raise emax.", nameof(Emin));
        if (Estop is < 0 or > Limits.MaxEpochs)
            throw new ArgumentException(
                $"estop is {Estop}; use 0 to disable early stopping or a patience up to {Limits.MaxEpochs}.", nameof(Estop));
        if (Resize is { } size && (size < Limits.MinResize || size > Limits.MaxResize))
            throw new ArgumentException($"resize is {size}; use a side between {Limits.MinResize} and {Limits.MaxResize} pixels " +
                $"(limit {nameof(Limits.MaxResize)}).", nameof(Resize));
        try
        {
            Limits.CheckBatch(BatchSize, EffectiveResize);
        }
        catch (IfcbException e)
        {
            throw new ArgumentException(e.Message, nameof(BatchSize), e);
        }
        if (ClassMin < 0)
            throw new ArgumentException($"class-min is {ClassMin}; it must be 0 or more.", nameof(ClassMin));
        if (ClassMax is { } max && max <= Math.Max(1, ClassMin))
            throw new ArgumentException($"class-max ({max}) must be greater than class-min ({ClassMin}).", nameof(ClassMax));
        Optimization.Validate(LearningRate, WeightDecay);
        if (ClassWeights.Mode != ClassWeightMode.None && Sampler != SamplerKind.None)
            throw new ArgumentException(
                "class-weights and sampler both rebalance the classes; choose one: --class-weights reweighs the loss, " +
                "--sampler balanced redraws the images.", nameof(Sampler));
        if (!Ifcb.Models.DeviceSelection.Choices.Contains(Device))
            throw new ArgumentException(
                $"device '{Device}' is not one of {string.Join(", ", Ifcb.Models.DeviceSelection.Choices)}.", nameof(Device));
    }
}
