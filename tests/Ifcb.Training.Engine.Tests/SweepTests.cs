using System.Text.Json;
using Ifcb.Platform;
using Ifcb.Platform.Jobs;
using Ifcb.Training.Engine.Jobs;
using Ifcb.Training.Engine.Sweeps;

namespace Ifcb.Training.Engine.Tests;

/// <summary>Sweeps: grid expansion and its checks, the leaderboard's order, the sweep record's transitions.</summary>
public sealed class SweepTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 3, 8, 0, 0, TimeSpan.Zero);

    private static TrainingRequestSpec Base => new()
    {
        Dataset = "sample", Architecture = "resnet18", TrainId = "sw", Pretrained = false, Seed = 42, Resize = 32, BatchSize = 8,
        Emax = 1, Emin = 1,
    };

    [Fact]
    public void A_two_by_two_grid_has_four_trials_the_last_axis_varying_fastest_with_one_seed()
    {
        var trials = SweepGrid.Expand(Base, new SweepAxes { Models = ["resnet18", "densenet121"], LearningRates = [1e-3, 3e-4] });

        Assert.Equal([0, 1, 2, 3], trials.Select(t => t.Index));
        Assert.Equal(["model=resnet18, lr=0.001", "model=resnet18, lr=0.0003", "model=densenet121, lr=0.001", "model=densenet121, lr=0.0003"],
            trials.Select(t => SweepGrid.Describe(t.Params)));
        Assert.Equal(["resnet18", "resnet18", "densenet121", "densenet121"], trials.Select(t => t.Spec.Architecture));
        Assert.Equal([1e-3, 3e-4, 1e-3, 3e-4], trials.Select(t => t.Spec.LearningRate!.Value));
        Assert.Equal(["sw-t0", "sw-t1", "sw-t2", "sw-t3"], trials.Select(t => t.Spec.TrainId));
        Assert.All(trials, t => Assert.Equal(42, t.Spec.Seed));
        Assert.All(trials, t => Assert.Equal(32, t.Spec.Resize));
    }

    [Fact]
    public void Every_axis_reaches_its_field_and_class_weights_file_takes_the_base_csv()
    {
        var trials = SweepGrid.Expand(Base with { ClassWeightsCsv = "a,1\nb,2\n" }, new SweepAxes
        {
            Optimizers = ["adamw"], WeightDecays = [0.05], LrSchedules = ["cosine"], ClassWeights = ["none", "file"], Batches = [4],
            Resizes = [48],
        });
        Assert.Equal(2, trials.Count);
        Assert.All(trials, t => Assert.Equal(("adamw", 0.05, "cosine", 4, 48),
            (t.Spec.Optimizer, t.Spec.WeightDecay!.Value, t.Spec.LrSchedule, t.Spec.BatchSize, t.Spec.Resize!.Value)));
        Assert.Equal(("none", null), (trials[0].Spec.ClassWeights, trials[0].Spec.ClassWeightsCsv));
        Assert.Equal(("file", "a,1\nb,2\n"), (trials[1].Spec.ClassWeights, trials[1].Spec.ClassWeightsCsv));
    }

    [Theory]
    [InlineData("lr '20'", "lr")]
    [InlineData("model 'resnet9000'", "model")]
    [InlineData("optimizer 'rmsprop'", "optimizer")]
    [InlineData("batch '0'", "batch")]
    public void A_bad_value_fails_naming_its_axis(string expected, string axis)
    {
        var axes = axis switch
        {
            "lr" => new SweepAxes { LearningRates = [1e-3, 20] },
            "model" => new SweepAxes { Models = ["resnet18", "resnet9000"] },
            "optimizer" => new SweepAxes { Optimizers = ["adam", "rmsprop"], LearningRates = [1e-3, 1e-4] },
            _ => new SweepAxes { Batches = [8, 0] },
        };
        var error = Assert.Throws<IfcbException>(() => SweepGrid.Expand(Base, axes));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.StartsWith(expected + ":", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_first_value_names_the_first_trial_and_its_values()
    {
        var error = Assert.Throws<IfcbException>(() => SweepGrid.Expand(Base, new SweepAxes { LearningRates = [20, 1e-3] }));
        Assert.StartsWith("trial 0 (lr=20):", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_combination_that_is_invalid_names_the_trial()
    {
        // Each value is fine on top of trial 0; only balanced weights together with the balanced sampler are refused.
        var error = Assert.Throws<IfcbException>(() => SweepGrid.Expand(Base,
            new SweepAxes { ClassWeights = ["none", "balanced"], Samplers = ["none", "balanced"] }));
        Assert.StartsWith("trial 3 (class_weights=balanced, sampler=balanced):", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Empty_repeated_and_oversized_grids_are_refused()
    {
        Assert.Contains("at least one axis", Assert.Throws<IfcbException>(() => SweepGrid.Expand(Base, new SweepAxes())).Message,
            StringComparison.Ordinal);
        Assert.Contains("lr lists '0.001' more than once", Assert.Throws<IfcbException>(() =>
            SweepGrid.Expand(Base, new SweepAxes { LearningRates = [1e-3, 1e-3] })).Message, StringComparison.Ordinal);
        var tooMany = new SweepAxes
        {
            LearningRates = [.. Enumerable.Range(1, 8).Select(i => i * 1e-4)], Batches = [.. Enumerable.Range(1, 9)],
        };
        Assert.Contains($"more than {SweepGrid.MaxTrials} trials", Assert.Throws<IfcbException>(() => SweepGrid.Expand(Base, tooMany)).Message,
            StringComparison.Ordinal);
        var exactly = tooMany with { Batches = [.. Enumerable.Range(1, 8)] };
        Assert.Equal(SweepGrid.MaxTrials, SweepGrid.Expand(Base, exactly).Count);
    }

    [Theory]
    [InlineData("", "", "f1_weighted", "max")]
    [InlineData("val_loss", "", "val_loss", "min")]
    [InlineData("ACCURACY", "min", "accuracy", "min")]
    public void Metrics_default_to_their_natural_direction(string name, string direction, string expectedName, string expectedDirection)
    {
        var metric = SweepMetric.Parse(name, direction);
        Assert.Equal((expectedName, expectedDirection), (metric.Name, metric.Direction));
    }

    [Fact]
    public void Unknown_metrics_and_directions_are_refused()
    {
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<IfcbException>(() => SweepMetric.Parse("auc", "")).Kind);
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<IfcbException>(() => SweepMetric.Parse("f1_macro", "up")).Kind);
    }

    private static SweepRecord Sweep(int trials, string metric = "f1_weighted", string direction = "max") => new()
    {
        JobId = new string('a', 32),
        Base = Base,
        Axes = new SweepAxes { Batches = [.. Enumerable.Range(1, trials)] },
        Metric = metric,
        Direction = direction,
        RegisterBest = "best-model",
        Trials = [.. Enumerable.Range(0, trials).Select(i => new SweepTrialRecord
        {
            Index = i, Params = [new SweepParam("batch", (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture))],
            JobId = JobIdOf(i),
        })],
    };

    private static string JobIdOf(int index) => index.ToString("x32", System.Globalization.CultureInfo.InvariantCulture);

    private static EpochRecord Epoch(int epoch, double f1Weighted, double f1Macro = 0.5, double valLoss = 1) =>
        new(epoch, true, 1, valLoss, valLoss / 10, f1Macro, f1Weighted, 0.9, 1, 100);

    private static TrainingJobRecord Job(int index, JobState state, params EpochRecord[] epochs) => new()
    {
        JobId = JobIdOf(index),
        Request = Base with { SweepId = new string('a', 32) },
        State = state,
        Epochs = [.. epochs],
        BestEpoch = epochs.Length == 0 ? -1 : epochs[^1].Epoch,
    };

    private static Dictionary<string, TrainingJobRecord> Jobs(params TrainingJobRecord[] jobs) => jobs.ToDictionary(j => j.JobId);

    [Fact]
    public void The_leaderboard_ranks_succeeded_trials_by_metric_ties_by_index_then_lists_the_rest_by_index()
    {
        var board = SweepLeaderboard.Rank(Sweep(6), Jobs(
            Job(0, JobState.Running, Epoch(0, 0.99)),
            Job(1, JobState.Succeeded, Epoch(0, 0.4), Epoch(1, 0.7)),
            Job(2, JobState.Failed),
            Job(3, JobState.Succeeded, Epoch(0, 0.8)),
            Job(4, JobState.Succeeded, Epoch(0, 0.7))));

        Assert.Equal([3, 1, 4, 0, 2, 5], board.Select(s => s.Trial.Index));
        Assert.Equal([1, 2, 3, 0, 0, 0], board.Select(s => s.Rank));
        Assert.Equal(new double?[] { 0.8, 0.7, 0.7, 0.99, null, null }, board.Select(s => s.Metric));
        Assert.Equal(JobState.Queued, board[^1].State); // trial 5 has no job yet
        Assert.Equal(JobIdOf(3), SweepLeaderboard.Best(board)!.Trial.JobId);
    }

    [Fact]
    public void The_metric_is_read_at_the_best_epoch_and_ranked_in_its_direction()
    {
        var jobs = Jobs(
            Job(0, JobState.Succeeded, Epoch(0, 0.9, f1Macro: 0.2, valLoss: 3)),
            Job(1, JobState.Succeeded, Epoch(0, 0.5, f1Macro: 0.6, valLoss: 2)) with { BestEpoch = 0 },
            Job(2, JobState.Succeeded, Epoch(0, 0.1, f1Macro: 0.9, valLoss: 9), Epoch(1, 0.2, f1Macro: 0.1, valLoss: 1)) with { BestEpoch = 0 });

        Assert.Equal([0, 1, 2], SweepLeaderboard.Rank(Sweep(3), jobs).Select(s => s.Trial.Index));
        Assert.Equal([2, 1, 0], SweepLeaderboard.Rank(Sweep(3, "f1_macro", "max"), jobs).Select(s => s.Trial.Index));
        Assert.Equal([1, 0, 2], SweepLeaderboard.Rank(Sweep(3, "val_loss", "min"), jobs).Select(s => s.Trial.Index));
        Assert.Equal([2, 0, 1], SweepLeaderboard.Rank(Sweep(3, "val_loss", "max"), jobs).Select(s => s.Trial.Index));
    }

    [Fact]
    public void A_not_finite_metric_is_not_ranked()
    {
        var board = SweepLeaderboard.Rank(Sweep(2), Jobs(Job(0, JobState.Succeeded, Epoch(0, double.NaN)),
            Job(1, JobState.Succeeded, Epoch(0, 0.1))));
        Assert.Equal([(1, 1), (0, 0)], board.Select(s => (s.Trial.Index, s.Rank)));
    }

    [Fact]
    public void A_sweep_finishes_with_its_winner_fails_without_one_and_a_cancelled_one_registers_nothing()
    {
        var running = Sweep(2).Begin(Now);
        Assert.Equal(JobState.Running, running.State);
        Assert.False(running.NeedsFollowUp());

        var won = running.Finish(JobIdOf(1), Now);
        Assert.Equal((JobState.Succeeded, JobIdOf(1)), (won.State, won.BestJobId));
        Assert.True(won.NeedsFollowUp());
        var sent = won.RegistrationSent(Now);
        Assert.Equal(Now, sent.RegistrationSentAt);
        Assert.False(sent.RegistrationEnded("best-model/1", null).NeedsFollowUp());
        Assert.False(sent.RegistrationEnded(null, "refused").NeedsFollowUp());
        Assert.False((won with { RegisterBest = null }).NeedsFollowUp());

        var failed = running.Finish(null, Now);
        Assert.Equal(JobState.Failed, failed.State);
        Assert.False(failed.NeedsFollowUp());
        Assert.Equal(ErrorKind.FailedPrecondition, Assert.Throws<IfcbException>(() => failed.RegistrationSent(Now)).Kind);

        var cancelled = running.RequestCancel("cancelled by a user", Now).Finish(JobIdOf(1), Now);
        Assert.Equal((JobState.Cancelled, null), (cancelled.State, cancelled.BestJobId));
        Assert.False(cancelled.NeedsFollowUp());
        Assert.All(SweepLeaderboard.Rank(cancelled, Jobs()), s => Assert.Equal(JobState.Cancelled, s.State));
    }

    [Fact]
    public void A_trial_is_registered_only_once_chosen_as_the_winner()
    {
        var trial = Job(0, JobState.Succeeded, Epoch(0, 0.5));
        Assert.False(trial.Registers);
        Assert.False(trial.NeedsFollowUp());

        var winner = trial.ChosenAsSweepWinner("best-model");
        Assert.True(winner.Registers);
        Assert.True(winner.NeedsFollowUp());
        Assert.Equal("best-model", winner.Request.RegisterAs);
        Assert.Equal(ErrorKind.FailedPrecondition, Assert.Throws<IfcbException>(() => winner.ChosenAsSweepWinner("other")).Kind);
        Assert.Equal(ErrorKind.FailedPrecondition,
            Assert.Throws<IfcbException>(() => Job(1, JobState.Running).ChosenAsSweepWinner("best-model")).Kind);

        var plain = trial with { Request = Base };
        Assert.True(plain.Registers);
        Assert.True(plain.NeedsFollowUp());
        Assert.Equal(ErrorKind.FailedPrecondition, Assert.Throws<IfcbException>(() => plain.ChosenAsSweepWinner("best-model")).Kind);
    }

    [Fact]
    public void Trials_of_one_input_size_share_a_norm_stats_job()
    {
        var sweep = new string('b', 32);
        Assert.Equal(SweepRecord.NormStatsJobIdFor(sweep, 224), SweepRecord.NormStatsJobIdFor(sweep, 224));
        Assert.NotEqual(SweepRecord.NormStatsJobIdFor(sweep, 224), SweepRecord.NormStatsJobIdFor(sweep, 299));
        Assert.NotEqual(SweepRecord.NormStatsJobIdFor(sweep, 224), SweepRecord.NormStatsJobIdFor(new string('c', 32), 224));
        Assert.True(JobStore<SweepRecord>.IsValidId(SweepRecord.NormStatsJobIdFor(sweep, 224)));
    }

    [Fact]
    public void A_sweep_record_round_trips_through_its_stored_json()
    {
        var sweep = (Sweep(2) with { TrialDeadlineSeconds = 3600 }).Begin(Now).Finish(JobIdOf(0), Now);
        var json = JsonSerializer.Serialize(sweep, TrainingOutputs.Json);
        var read = JsonSerializer.Deserialize<SweepRecord>(json, TrainingOutputs.Json)!;
        Assert.Equal(sweep.Trials.Select(t => (t.Index, t.JobId, SweepGrid.Describe(t.Params))),
            read.Trials.Select(t => (t.Index, t.JobId, SweepGrid.Describe(t.Params))));
        Assert.Equal((sweep.State, sweep.BestJobId, sweep.Metric, sweep.Direction, sweep.RegisterBest),
            (read.State, read.BestJobId, read.Metric, read.Direction, read.RegisterBest));
        Assert.Equal(sweep.Axes.Batches, read.Axes.Batches);
        Assert.Equal(3600, read.TrialDeadlineSeconds);
        Assert.DoesNotContain("sweep_id", JsonSerializer.Serialize(Base, TrainingOutputs.Json), StringComparison.Ordinal);
    }
}
