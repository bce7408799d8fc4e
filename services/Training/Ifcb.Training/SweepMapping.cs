using Ifcb.Platform.Jobs;
using Ifcb.Protos;
using Ifcb.Training.Engine.Sweeps;

namespace Ifcb.Training;

/// <summary>proto ⇄ engine records for sweeps.</summary>
internal static class SweepMapping
{
    public static SweepAxes ToAxes(this StartSweepRequest r) => new()
    {
        Models = [.. r.Model],
        LearningRates = [.. r.Lr],
        Optimizers = [.. r.Optimizer],
        WeightDecays = [.. r.WeightDecay],
        LrSchedules = [.. r.LrSchedule],
        ClassWeights = [.. r.ClassWeights],
        Samplers = [.. r.Sampler],
        Batches = [.. r.Batch],
        Resizes = [.. r.Resize],
    };

    public static StartSweepRequest ToRequestProto(this SweepRecord s) => new()
    {
        Base = s.Base.ToDeadlineProto(s.TrialDeadlineSeconds, s.Priority),
        Model = { s.Axes.Models },
        Lr = { s.Axes.LearningRates },
        Optimizer = { s.Axes.Optimizers },
        WeightDecay = { s.Axes.WeightDecays },
        LrSchedule = { s.Axes.LrSchedules },
        ClassWeights = { s.Axes.ClassWeights },
        Sampler = { s.Axes.Samplers },
        Batch = { s.Axes.Batches },
        Resize = { s.Axes.Resizes },
        Metric = s.Metric,
        Direction = s.Direction,
        RegisterBest = s.RegisterBest ?? "",
    };

    private static StartTrainingRequest ToDeadlineProto(this Engine.Jobs.TrainingRequestSpec spec, long deadlineSeconds,
        JobPriority priority)
    {
        var request = spec.ToProto();
        request.DeadlineSeconds = deadlineSeconds;
        request.Priority = priority.Name();
        return request;
    }

    public static Sweep ToProto(this SweepView view)
    {
        var s = view.Sweep;
        var sweep = new Sweep
        {
            SweepId = s.JobId,
            State = s.State.ToProto(),
            Request = s.ToRequestProto(),
            Metric = s.Metric,
            Direction = s.Direction,
            BestJobId = s.BestJobId ?? "",
            RegisteredVersion = s.RegisteredVersion ?? "",
            RegistrationError = s.RegistrationError ?? "",
            CreatedAt = s.CreatedAt.ToString("O"),
            UpdatedAt = view.UpdatedAt.ToString("O"),
            EndedAt = s.EndedAt?.ToString("O") ?? "",
            CancelReason = s.CancelReason ?? "",
            Trials = s.Trials.Count,
            TrialsEnded = view.Leaderboard.Count(t => t.State is Platform.Jobs.JobState.Succeeded or Platform.Jobs.JobState.Failed
                or Platform.Jobs.JobState.Cancelled),
        };
        sweep.Leaderboard.AddRange(view.Leaderboard.Select(ToProto));
        return sweep;
    }

    public static SweepTrial ToProto(this SweepStanding standing)
    {
        var trial = new SweepTrial
        {
            Index = standing.Trial.Index,
            JobId = standing.Job?.JobId ?? "",
            State = standing.State.ToProto(),
            BestEpoch = standing.Job?.BestEpoch ?? -1,
            Epochs = standing.Job?.Epochs.Count ?? 0,
            Worker = standing.Job?.Worker ?? "",
            Error = standing.Job?.Error ?? "",
            Rank = standing.Rank,
        };
        foreach (var param in standing.Trial.Params)
            trial.Params[param.Axis] = param.Value;
        if (standing.Metric is { } metric)
            trial.Metric = metric;
        return trial;
    }
}
