using Ifcb.Platform.Jobs;
using Ifcb.Training.Engine.Jobs;

namespace Ifcb.Training.Engine.Sweeps;

/// <summary>
/// A trial on the leaderboard: its job (null while not submitted), its state, the sweep's metric at its best epoch so
/// far, and its 1-based rank among the succeeded trials with a metric (0 for the others).
/// </summary>
public sealed record SweepStanding(SweepTrialRecord Trial, TrainingJobRecord? Job, JobState State, double? Metric, int Rank);

/// <summary>Ranks a sweep's trials by its metric.</summary>
public static class SweepLeaderboard
{
    /// <summary>
    /// Every trial, best first: SUCCEEDED trials with a metric by the metric in its direction (ties: lower index first),
    /// then all the others by index. A trial without a job is QUEUED, or CANCELLED in a sweep that was cancelled.
    /// </summary>
    public static IReadOnlyList<SweepStanding> Rank(SweepRecord sweep, IReadOnlyDictionary<string, TrainingJobRecord> jobs)
    {
        ArgumentNullException.ThrowIfNull(sweep);
        ArgumentNullException.ThrowIfNull(jobs);
        var metric = sweep.Ranking();
        var standings = sweep.Trials.Select(t =>
        {
            var job = jobs.GetValueOrDefault(t.JobId);
            var state = job?.State ?? (sweep.CancelRequested || sweep.IsTerminal ? JobState.Cancelled : JobState.Queued);
            return new SweepStanding(t, job, state, job is null ? null : MetricOf(job, metric), 0);
        }).ToList();
        var ranked = standings.Where(IsRanked)
            .OrderBy(s => s.Metric!.Value, Comparer<double>.Create(metric.Compare))
            .ThenBy(s => s.Trial.Index)
            .Select((s, i) => s with { Rank = i + 1 });
        return [.. ranked, .. standings.Where(s => !IsRanked(s)).OrderBy(s => s.Trial.Index)];
    }

    /// <summary>The winner: the first-ranked trial, or null when no trial succeeded with a metric.</summary>
    public static SweepStanding? Best(IReadOnlyList<SweepStanding> leaderboard) => leaderboard.FirstOrDefault(s => s.Rank == 1);

    /// <summary>The metric at the job's best epoch (the checkpoint it would register); null before its first validation.</summary>
    public static double? MetricOf(TrainingJobRecord job, SweepMetric metric)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(metric);
        return job.Epochs.FirstOrDefault(e => e.Epoch == job.BestEpoch) is { } best ? metric.Read(best) : null;
    }

    private static bool IsRanked(SweepStanding s) => s.State == JobState.Succeeded && s.Metric is not null;
}
