using System.Globalization;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ifcb.Training.Engine;

/// <summary>The optimisers of <c>--optimizer</c>. neuston always trains with Adam (neuston_models.py:63-64).</summary>
public enum OptimizerKind
{
    /// <summary><c>torch.optim.Adam</c> (betas 0.9/0.999, eps 1e-8); weight decay is an L2 term added to the gradient.</summary>
    Adam,

    /// <summary><c>torch.optim.AdamW</c> (betas 0.9/0.999, eps 1e-8): decoupled weight decay, PyTorch's default 0.01.</summary>
    AdamW,

    /// <summary><c>torch.optim.SGD</c> with momentum 0.9, no dampening, no Nesterov.</summary>
    Sgd,
}

/// <summary>The learning-rate schedules of <c>--lr-schedule</c>; each steps once per epoch, after validation.</summary>
public enum LrSchedule
{
    /// <summary>A constant learning rate (neuston).</summary>
    None,

    /// <summary>
    /// <c>ReduceLROnPlateau</c> on val_loss (the value early stopping watches): the rate is multiplied by
    /// <see cref="Optimization.PlateauFactor"/> once val_loss has not improved by a relative 1e-4 for more than
    /// <see cref="Optimization.PlateauPatience"/> epochs; PyTorch's other defaults (no cooldown, min_lr 0).
    /// </summary>
    Plateau,

    /// <summary><c>CosineAnnealingLR</c> with T_max = emax and eta_min 0: epoch e trains at lr·(1 + cos(π·e/emax))/2.</summary>
    Cosine,
}

/// <summary>
/// Optimiser and schedule choices, and how they become TorchSharp objects. TorchSharp's own Adam, AdamW, SGD,
/// ReduceLROnPlateau and CosineAnnealingLR are used as they are: OptimizerParityTests checks each against Debian's
/// PyTorch on the same parameters and gradients.
/// </summary>
public static class Optimization
{
    /// <summary>neuston's learning rate (neuston_models.py:63-64).</summary>
    public const double DefaultLearningRate = 1e-3;

    /// <summary>The largest <c>--lr</c> accepted; anything above diverges at once.</summary>
    public const double MaxLearningRate = 10;

    /// <summary>The largest <c>--weight-decay</c> accepted.</summary>
    public const double MaxWeightDecay = 1;

    /// <summary>SGD's momentum.</summary>
    public const double SgdMomentum = 0.9;

    /// <summary>AdamW's weight decay when <c>--weight-decay</c> is absent (PyTorch's default); Adam and SGD use 0.</summary>
    public const double AdamWDefaultWeightDecay = 1e-2;

    /// <summary>What plateau multiplies the learning rate by.</summary>
    public const double PlateauFactor = 0.1;

    /// <summary>
    /// Epochs without improvement that plateau tolerates: half of neuston's early-stopping patience (10), so the lower
    /// rate gets epochs of its own before training stops.
    /// </summary>
    public const int PlateauPatience = 5;

    /// <summary>The values <c>--optimizer</c> accepts.</summary>
    public static IReadOnlyList<string> OptimizerNames { get; } = ["adam", "adamw", "sgd"];

    /// <summary>The values <c>--lr-schedule</c> accepts.</summary>
    public static IReadOnlyList<string> ScheduleNames { get; } = ["none", "plateau", "cosine"];

    /// <summary>The optimiser's flag value, as args.json and hparams record it.</summary>
    public static string Name(this OptimizerKind kind) => kind switch
    {
        OptimizerKind.AdamW => "adamw",
        OptimizerKind.Sgd => "sgd",
        _ => "adam",
    };

    /// <summary>The schedule's flag value, as args.json and hparams record it.</summary>
    public static string Name(this LrSchedule schedule) => schedule switch
    {
        LrSchedule.Plateau => "plateau",
        LrSchedule.Cosine => "cosine",
        _ => "none",
    };

    /// <summary>An optimiser name (case-insensitive); null or empty is neuston's adam.</summary>
    /// <exception cref="ArgumentException">Not one of <see cref="OptimizerNames"/>.</exception>
    public static OptimizerKind ParseOptimizer(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        null or "" or "adam" => OptimizerKind.Adam,
        "adamw" => OptimizerKind.AdamW,
        "sgd" => OptimizerKind.Sgd,
        _ => throw new ArgumentException(
            $"optimizer '{name}' is not one of {string.Join(", ", OptimizerNames)}.", nameof(name)),
    };

    /// <summary>A schedule name (case-insensitive); null or empty is none.</summary>
    /// <exception cref="ArgumentException">Not one of <see cref="ScheduleNames"/>.</exception>
    public static LrSchedule ParseSchedule(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        null or "" or "none" => LrSchedule.None,
        "plateau" => LrSchedule.Plateau,
        "cosine" => LrSchedule.Cosine,
        _ => throw new ArgumentException(
            $"lr-schedule '{name}' is not one of {string.Join(", ", ScheduleNames)}.", nameof(name)),
    };

    /// <summary>The weight decay a run uses: the one asked for, else 0.01 for AdamW and 0 for Adam and SGD.</summary>
    public static double EffectiveWeightDecay(OptimizerKind kind, double? requested) =>
        requested ?? (kind == OptimizerKind.AdamW ? AdamWDefaultWeightDecay : 0);

    /// <summary>Checks a learning rate and a weight decay; the messages name the flag and its range.</summary>
    /// <exception cref="ArgumentException">Out of range or not a finite number.</exception>
    public static void Validate(double learningRate, double? weightDecay)
    {
        if (!double.IsFinite(learningRate) || learningRate <= 0 || learningRate > MaxLearningRate)
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"lr is {learningRate}; it must be above 0 and at most {MaxLearningRate} (neuston's is {DefaultLearningRate})."),
                nameof(learningRate));
        if (weightDecay is { } decay && (!double.IsFinite(decay) || decay < 0 || decay > MaxWeightDecay))
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"weight-decay is {decay}; it must be between 0 and {MaxWeightDecay}."), nameof(weightDecay));
    }

    /// <summary>The optimiser over <paramref name="parameters"/>.</summary>
    public static OptimizerHelper CreateOptimizer(OptimizerKind kind, IEnumerable<Parameter> parameters, double learningRate,
        double weightDecay) => kind switch
        {
            OptimizerKind.AdamW => optim.AdamW(parameters, lr: learningRate, weight_decay: weightDecay),
            OptimizerKind.Sgd => optim.SGD(parameters, learningRate, momentum: SgdMomentum, weight_decay: weightDecay),
            _ => optim.Adam(parameters, lr: learningRate, weight_decay: weightDecay),
        };

    /// <summary>The learning rate the optimiser's next step uses.</summary>
    public static double CurrentLearningRate(this OptimizerHelper optimizer) => optimizer.ParamGroups.First().LearningRate;
}

/// <summary>
/// A schedule bound to one optimiser, stepped once after every completed epoch. TorchSharp's schedulers cannot save
/// their state, but each one's state is a function of the steps it has taken and the val_loss of each: a resumed run
/// rebuilds it by replaying the completed epochs' val_loss (<see cref="Replay"/>) from the resume state, then loads
/// the optimiser's state, and continues exactly where the interrupted run stopped.
/// </summary>
public sealed class EpochLrSchedule
{
    private readonly optim.lr_scheduler.LRScheduler? _scheduler;
    private readonly OptimizerHelper _optimizer;

    /// <param name="epochs">emax: the cosine schedule's period (T_max).</param>
    public EpochLrSchedule(LrSchedule kind, OptimizerHelper optimizer, int epochs)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        Kind = kind;
        _optimizer = optimizer;
        _scheduler = kind switch
        {
            LrSchedule.Plateau => optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode: "min", factor: Optimization.PlateauFactor,
                patience: Optimization.PlateauPatience),
            LrSchedule.Cosine => optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs, eta_min: 0),
            _ => null,
        };
    }

    /// <summary>Which schedule this is.</summary>
    public LrSchedule Kind { get; }

    /// <summary>Epochs stepped so far.</summary>
    public int Steps { get; private set; }

    /// <summary>The learning rate of the next epoch.</summary>
    public double LearningRate => _optimizer.CurrentLearningRate();

    /// <summary>After an epoch: sets the next epoch's learning rate from this one's <paramref name="valLoss"/>.</summary>
    public void Step(double valLoss)
    {
        if (_scheduler is optim.lr_scheduler.impl.ReduceLROnPlateau)
            _scheduler.step(valLoss);
        else
            _scheduler?.step();
        Steps++;
    }

    /// <summary>Steps once per completed epoch, in order: the state an uninterrupted run had after them.</summary>
    public void Replay(IEnumerable<double> valLosses)
    {
        ArgumentNullException.ThrowIfNull(valLosses);
        foreach (var valLoss in valLosses)
            Step(valLoss);
    }
}
