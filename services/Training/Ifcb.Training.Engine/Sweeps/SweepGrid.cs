using System.Globalization;
using Ifcb.Platform;
using Ifcb.Training.Engine.Jobs;

namespace Ifcb.Training.Engine.Sweeps;

/// <summary>
/// The axes of a sweep: each non-empty list replaces the base request's field with each of its values in turn; an
/// empty list keeps the base value.
/// </summary>
public sealed record SweepAxes
{
    public List<string> Models { get; init; } = [];
    public List<double> LearningRates { get; init; } = [];
    public List<string> Optimizers { get; init; } = [];
    public List<double> WeightDecays { get; init; } = [];
    public List<string> LrSchedules { get; init; } = [];
    public List<string> ClassWeights { get; init; } = [];
    public List<string> Samplers { get; init; } = [];
    public List<int> Batches { get; init; } = [];
    public List<int> Resizes { get; init; } = [];
}

/// <summary>One axis value of a trial, e.g. ("lr", "0.0003"); axes are named as the StartSweepRequest fields.</summary>
public sealed record SweepParam(string Axis, string Value);

/// <summary>One combination of the grid: its position, its axis values and the training request it runs.</summary>
public sealed record SweepTrialPlan(int Index, IReadOnlyList<SweepParam> Params, TrainingRequestSpec Spec);

/// <summary>
/// Expands a sweep's axes into the cartesian product of their values (the last axis varying fastest) and checks every
/// trial's request up front, as StartTraining would, so that a sweep that starts has no trial failing on its input.
/// </summary>
public static class SweepGrid
{
    /// <summary>The most trials one sweep may have.</summary>
    public const int MaxTrials = 64;

    private sealed record Axis(string Name, IReadOnlyList<string> Labels, Func<TrainingRequestSpec, int, TrainingRequestSpec> Apply);

    private static Axis Of<T>(string name, IReadOnlyList<T> values, Func<TrainingRequestSpec, T, TrainingRequestSpec> apply)
        where T : notnull =>
        new(name, [.. values.Select(v => Convert.ToString(v, CultureInfo.InvariantCulture)!.Trim())], (spec, i) => apply(spec, values[i]));

    private static List<Axis> AxesOf(SweepAxes axes, TrainingRequestSpec baseSpec) =>
    [
        Of("model", axes.Models, (s, v) => s with { Architecture = v.Trim() }),
        Of("lr", axes.LearningRates, (s, v) => s with { LearningRate = v }),
        Of("optimizer", axes.Optimizers, (s, v) => s with { Optimizer = v.Trim() }),
        Of("weight_decay", axes.WeightDecays, (s, v) => s with { WeightDecay = v }),
        Of("lr_schedule", axes.LrSchedules, (s, v) => s with { LrSchedule = v.Trim() }),
        // "file" takes the base request's class_weights_csv; the other modes take none.
        Of("class_weights", axes.ClassWeights, (s, v) => s with
        {
            ClassWeights = v.Trim(),
            ClassWeightsCsv = v.Trim().Equals("file", StringComparison.OrdinalIgnoreCase) ? baseSpec.ClassWeightsCsv : null,
        }),
        Of("sampler", axes.Samplers, (s, v) => s with { Sampler = v.Trim() }),
        Of("batch", axes.Batches, (s, v) => s with { BatchSize = v }),
        Of("resize", axes.Resizes, (s, v) => s with { Resize = v }),
    ];

    /// <summary>
    /// Every trial of the grid, each request checked (<see cref="TrainingRequestSpec.Validate"/>). Trial i trains as
    /// "TRAIN_ID-tI" with the base request's (resolved) seed.
    /// </summary>
    /// <exception cref="IfcbException">
    /// InvalidArgument: no axis has a value, an axis repeats a value, more than <see cref="MaxTrials"/> trials, or a
    /// trial's request is invalid (the message names the axis and value, or the trial and its values).
    /// </exception>
    public static IReadOnlyList<SweepTrialPlan> Expand(TrainingRequestSpec baseSpec, SweepAxes axes)
    {
        ArgumentNullException.ThrowIfNull(baseSpec);
        ArgumentNullException.ThrowIfNull(axes);
        var used = AxesOf(axes, baseSpec).Where(a => a.Labels.Count > 0).ToList();
        if (used.Count == 0)
            throw IfcbException.InvalidArgument("A sweep needs at least one axis with values (model, lr, optimizer, ...).");
        long count = 1;
        foreach (var axis in used)
        {
            if (axis.Labels.FirstOrDefault(l => axis.Labels.Count(other => other == l) > 1) is { } repeated)
                throw IfcbException.InvalidArgument($"{axis.Name} lists '{repeated}' more than once.");
            count *= axis.Labels.Count;
            if (count > MaxTrials)
                throw IfcbException.InvalidArgument(
                    $"The grid has more than {MaxTrials} trials (limit {nameof(MaxTrials)}): use fewer values per axis or fewer axes.");
        }

        var trials = new List<SweepTrialPlan>((int)count);
        var positions = new int[used.Count];
        for (var index = 0; index < count; index++)
        {
            var remainder = index;
            for (var a = used.Count - 1; a >= 0; a--)
            {
                positions[a] = remainder % used[a].Labels.Count;
                remainder /= used[a].Labels.Count;
            }
            var spec = baseSpec with { TrainId = $"{baseSpec.TrainId}-t{index}" };
            for (var a = 0; a < used.Count; a++)
                spec = used[a].Apply(spec, positions[a]);
            var parameters = used.Select((axis, a) => new SweepParam(axis.Name, axis.Labels[positions[a]])).ToList();
            trials.Add(new SweepTrialPlan(index, parameters, spec));
        }

        // Each axis value on top of the first trial, so that a bad value is reported by its axis; then every combination.
        Check(trials[0], "trial 0 (" + Describe(trials[0].Params) + ")");
        for (var a = 0; a < used.Count; a++)
        {
            for (var v = 1; v < used[a].Labels.Count; v++)
                Check(trials[0] with { Spec = used[a].Apply(trials[0].Spec, v) }, $"{used[a].Name} '{used[a].Labels[v]}'");
        }
        foreach (var trial in trials.Skip(1))
            Check(trial, $"trial {trial.Index} ({Describe(trial.Params)})");
        return trials;
    }

    public static string Describe(IEnumerable<SweepParam> parameters) => string.Join(", ", parameters.Select(p => $"{p.Axis}={p.Value}"));

    private static void Check(SweepTrialPlan trial, string what)
    {
        try
        {
            trial.Spec.Validate();
        }
        catch (Exception e) when (e is ArgumentException or FormatException || e is IfcbException { Kind: ErrorKind.InvalidArgument })
        {
            throw IfcbException.InvalidArgument($"{what}: {Faults.Message(e)}");
        }
    }
}
