using Ifcb.Platform;
using Ifcb.Platform.Jobs;
using Ifcb.Protos;
using Ifcb.Training.Engine.Jobs;
using Ifcb.Training.Engine.Sweeps;

namespace Ifcb.Training;

/// <summary>A sweep and its leaderboard as read now.</summary>
public sealed record SweepView(SweepRecord Sweep, IReadOnlyList<SweepStanding> Leaderboard)
{
    /// <summary>The latest write to the sweep or any of its trials.</summary>
    public DateTimeOffset UpdatedAt => Leaderboard.Select(s => s.Job?.UpdatedAt ?? Sweep.UpdatedAt).Append(Sweep.UpdatedAt).Max();

    /// <summary>Nothing more will change: the sweep has ended and its winner, if any was to be, is registered (or refused).</summary>
    public bool Ended => Sweep.IsTerminal && !Sweep.NeedsFollowUp();
}

/// <summary>
/// Starts sweeps (every trial checked, then stored, then submitted as an ordinary training job through
/// <see cref="TrainingSubmissions"/>) and moves them on: the reconciler calls <see cref="AdvanceActiveAsync"/> on every
/// replica, so a sweep's state lives only in blobs and survives restarts. Every step is an ETag-guarded transition of
/// the sweep record, so two replicas advancing the same sweep do each step once: one of them finishes it, one of them
/// sends the winner to the Registry.
/// </summary>
public sealed class SweepCoordinator(
    SweepStore sweeps,
    TrainingJobStore jobs,
    TrainingSubmissions submissions,
    TrainingJobWork training,
    JobKernelOptions options,
    ILogger<SweepCoordinator> logger)
{
    /// <summary>
    /// How long after a sweep was stored a trial without a job counts as lost in a crash (and is submitted again), and a
    /// sweep's active marker without a record as left over.
    /// </summary>
    public static readonly TimeSpan SubmissionGrace = TimeSpan.FromMinutes(1);

    /// <summary>What a sweep's trials are named after (TRAIN_ID-tN) when the base request names nothing.</summary>
    public const string DefaultTrainId = "sweep";

    /// <summary>Checks every trial, stores the sweep and submits its trials.</summary>
    /// <exception cref="IfcbException">InvalidArgument, NotFound, FailedPrecondition: see sweeps.proto StartSweep.</exception>
    public async Task<SweepRecord> StartAsync(StartSweepRequest request, CancellationToken cancellationToken)
    {
        var baseRequest = request.Base ?? throw IfcbException.InvalidArgument("base is required: the request every trial starts from.");
        if (!string.IsNullOrWhiteSpace(baseRequest.RegisterAs))
            throw IfcbException.InvalidArgument("base.register_as is set; a sweep registers only its best trial: use register_best.");
        var registerBest = string.IsNullOrWhiteSpace(request.RegisterBest) ? null : request.RegisterBest.Trim();
        if (registerBest is not null)
            ResourceName.ValidateModelName(registerBest, "register_best");
        var metric = SweepMetric.Parse(request.Metric, request.Direction);
        // One seed for every trial: they then differ only by their axes (the same split and shuffles).
        var baseSpec = baseRequest.ToSpec(Engine.TrainingPreparation.ResolveSeed(baseRequest.Seed));
        // Sweeps are background work: their trials queue behind ordinary jobs unless the request says otherwise.
        var trialPriority = string.IsNullOrWhiteSpace(baseRequest.Priority)
            ? JobPriority.Low
            : JobPriorities.Parse(baseRequest.Priority, "base.priority");
        if (string.IsNullOrWhiteSpace(baseSpec.TrainId))
            baseSpec = baseSpec with { TrainId = DefaultTrainId };
        var axes = request.ToAxes();
        var plans = SweepGrid.Expand(baseSpec, axes);

        var sweepId = SweepStore.NewId();
        var prepared = new List<TrainingJobRecord>(plans.Count);
        foreach (var plan in plans)
            prepared.Add(await PrepareTrialAsync(sweepId, plan, baseRequest.DeadlineSeconds, trialPriority, TrainingJobStore.NewId(),
                cancellationToken));

        var sweep = new SweepRecord
        {
            JobId = sweepId,
            Base = baseSpec,
            Axes = axes,
            TrialDeadlineSeconds = baseRequest.DeadlineSeconds,
            Priority = trialPriority,
            Metric = metric.Name,
            Direction = metric.Direction,
            RegisterBest = registerBest,
            Trials = [.. plans.Select((p, i) =>
                new SweepTrialRecord { Index = p.Index, Params = [.. p.Params], JobId = prepared[i].JobId })],
        }.Begin(sweeps.Time.GetUtcNow());
        sweep = await sweeps.CreateAsync(sweep, cancellationToken);
        foreach (var job in prepared)
            await SubmitTrialAsync(job, cancellationToken);
        logger.LogInformation("Sweep {SweepId}: {Trials} trials of {Dataset} submitted, ranked by {Metric} ({Direction})", sweepId,
            plans.Count, baseSpec.Dataset, metric.Name, metric.Direction);
        return sweep;
    }

    /// <summary>The sweep and its leaderboard, or null when there is no such sweep.</summary>
    public async Task<SweepView?> ReadAsync(string sweepId, CancellationToken cancellationToken)
    {
        var sweep = await sweeps.GetAsync(sweepId, cancellationToken);
        return sweep is null ? null : new SweepView(sweep, SweepLeaderboard.Rank(sweep, await ReadTrialsAsync(sweep, cancellationToken)));
    }

    /// <summary>Every sweep, newest first.</summary>
    public Task<List<SweepRecord>> ListAsync(CancellationToken cancellationToken) => sweeps.ListAsync(cancellationToken);

    /// <summary>Flags the sweep cancelled and cancels its trials that have not ended; an ended sweep is returned unchanged.</summary>
    /// <exception cref="IfcbException">NotFound: no such sweep.</exception>
    public async Task CancelAsync(string sweepId, string reason, CancellationToken cancellationToken)
    {
        await sweeps.UpdateAsync(sweepId, s => s.IsTerminal || s.CancelRequested ? null : s.RequestCancel(reason, sweeps.Time.GetUtcNow()),
            cancellationToken);
        await AdvanceAsync(sweepId, cancellationToken);
    }

    /// <summary>Advances every sweep that has not ended or still has its winner to register (the reconciler's pass).</summary>
    public async Task AdvanceActiveAsync(CancellationToken cancellationToken)
    {
        foreach (var (sweepId, markedAt) in await sweeps.ListActiveAsync(cancellationToken))
        {
            try
            {
                if (!await AdvanceAsync(sweepId, cancellationToken) && sweeps.Time.GetUtcNow() - markedAt > SubmissionGrace)
                    await sweeps.RetireAsync(sweepId, cancellationToken);
            }
            catch (Exception e) when (!(e is OperationCanceledException && cancellationToken.IsCancellationRequested))
            {
                // One sweep that cannot advance (storage, or a lost trial that no longer validates) holds up no other.
                logger.LogWarning("Sweep {SweepId} was not advanced ({Reason}); the next pass tries again.", sweepId, Faults.Reason(e));
            }
        }
    }

    /// <summary>
    /// One step of a sweep: submits trials lost in a crash, cancels the trials of a cancelled sweep, finishes the sweep
    /// when every trial has ended and sends its winner to the Registry. False when there is no such sweep.
    /// </summary>
    public async Task<bool> AdvanceAsync(string sweepId, CancellationToken cancellationToken)
    {
        var sweep = await sweeps.GetAsync(sweepId, cancellationToken);
        if (sweep is null)
            return false;
        if (sweep.IsTerminal && !sweep.NeedsFollowUp())
        {
            await sweeps.RetireAsync(sweepId, cancellationToken);
            return true;
        }
        var trials = await ReadTrialsAsync(sweep, cancellationToken);
        if (!sweep.IsTerminal)
        {
            var missing = sweep.Trials.Where(t => !trials.ContainsKey(t.JobId)).ToList();
            if (missing.Count > 0 && !sweep.CancelRequested && sweeps.Time.GetUtcNow() - sweep.CreatedAt > SubmissionGrace)
            {
                await ResubmitAsync(sweep, missing, cancellationToken);
                return true;
            }
            if (sweep.CancelRequested)
            {
                foreach (var job in trials.Values.Where(j => !j.IsTerminal).ToList())
                    trials[job.JobId] = await submissions.CancelAsync(job.JobId, sweep.CancelReason ?? "the sweep was cancelled",
                        cancellationToken);
            }
            if (!sweep.Trials.All(t => trials.TryGetValue(t.JobId, out var job) ? job.IsTerminal : sweep.CancelRequested))
                return true;
            var best = SweepLeaderboard.Best(SweepLeaderboard.Rank(sweep, trials));
            var (finished, changed) = await sweeps.UpdateAsync(sweepId,
                s => s.IsTerminal ? null : s.Finish(best?.Trial.JobId, sweeps.Time.GetUtcNow()), cancellationToken);
            sweep = finished;
            if (changed)
            {
                logger.LogInformation("Sweep {SweepId} {State}: best trial {JobId} ({Metric} {Value})", sweepId, sweep.State,
                    best?.Trial.JobId ?? "none", sweep.Metric, best?.Metric);
            }
        }
        if (sweep.NeedsFollowUp())
            await RegisterBestAsync(sweep, trials[sweep.BestJobId!], cancellationToken);
        return true;
    }

    /// <summary>
    /// Sends the winner's best checkpoint to the Registry through the path every finished job takes (ModelTrained), once
    /// per <see cref="JobKernelOptions.FollowUpAfter"/> until the Registry answered; copies its answer to the sweep.
    /// </summary>
    private async Task RegisterBestAsync(SweepRecord sweep, TrainingJobRecord winner, CancellationToken cancellationToken)
    {
        if (winner.Request.RegisterAs == sweep.RegisterBest && (winner.RegisteredVersion ?? winner.RegistrationError) is not null)
        {
            await sweeps.UpdateAsync(sweep.JobId, s => s.NeedsFollowUp() ? s.RegistrationEnded(winner.RegisteredVersion,
                winner.RegistrationError) : null, cancellationToken);
            return;
        }
        // Only the replica whose conditional write records the send goes on to send it.
        if (!await sweeps.ClaimRegistrationAsync(sweep.JobId, sweep.RegistrationSentAt, options.FollowUpAfter, cancellationToken))
            return;
        var (chosen, _) = await jobs.UpdateAsync(winner.JobId,
            j => j.Request.RegisterAs == sweep.RegisterBest ? null : j.ChosenAsSweepWinner(sweep.RegisterBest!), cancellationToken);
        await training.SendModelTrainedAsync(chosen, cancellationToken);
        logger.LogInformation("Sweep {SweepId}: registering its best trial {JobId} as {Model}", sweep.JobId, winner.JobId,
            sweep.RegisterBest);
    }

    private async Task ResubmitAsync(SweepRecord sweep, List<SweepTrialRecord> missing, CancellationToken cancellationToken)
    {
        var plans = SweepGrid.Expand(sweep.Base, sweep.Axes);
        foreach (var trial in missing)
        {
            logger.LogWarning("Sweep {SweepId}: trial {Index} has no job {JobId}; submitting it again", sweep.JobId, trial.Index,
                trial.JobId);
            await SubmitTrialAsync(await PrepareTrialAsync(sweep.JobId, plans[trial.Index], sweep.TrialDeadlineSeconds, sweep.Priority,
                    trial.JobId,
                    cancellationToken),
                cancellationToken);
        }
    }

    private async Task<TrainingJobRecord> PrepareTrialAsync(string sweepId, SweepTrialPlan plan, long deadlineSeconds,
        JobPriority priority, string jobId, CancellationToken cancellationToken)
    {
        var request = plan.Spec.ToProto();
        request.DeadlineSeconds = deadlineSeconds;
        request.Priority = priority.Name();
        var resize = plan.Spec.Resize ?? Ifcb.Models.ModelZoo.InputSize(plan.Spec.Architecture);
        return await submissions.PrepareAsync(request, spec => spec with
        {
            SweepId = sweepId,
            NormStatsJobId = spec.WantsAutoImgNorm ? SweepRecord.NormStatsJobIdFor(sweepId, resize) : null,
        }, jobId, cancellationToken);
    }

    private async Task SubmitTrialAsync(TrainingJobRecord job, CancellationToken cancellationToken)
    {
        try
        {
            await submissions.SubmitAsync(job, cancellationToken);
        }
        catch (IfcbException e) when (e.Kind == ErrorKind.AlreadyExists)
        {
            // Another replica submitted this trial again meanwhile: it is stored, which is all that matters.
        }
    }

    private async Task<Dictionary<string, TrainingJobRecord>> ReadTrialsAsync(SweepRecord sweep, CancellationToken cancellationToken)
    {
        var trials = new Dictionary<string, TrainingJobRecord>(StringComparer.Ordinal);
        foreach (var batch in sweep.Trials.Chunk(16))
        {
            foreach (var job in await Task.WhenAll(batch.Select(t => jobs.GetAsync(t.JobId, cancellationToken))))
            {
                if (job is not null)
                    trials[job.JobId] = job;
            }
        }
        return trials;
    }
}
