using Microsoft.Extensions.Logging;

namespace Ifcb.Platform.Jobs;

/// <summary>What one reconciler sweep did, for logs and tests.</summary>
public sealed record ReconcileReport(
    int Active, int Dispatched, int Requeued, int FailedLostWorkers, int Cancelled, int FollowedUp, int Retired)
{
    public bool DidSomething => Dispatched + Requeued + FailedLostWorkers + Cancelled + FollowedUp + Retired > 0;
}

/// <summary>
/// Repairs what a crash, a dead worker or a broker outage left behind, for one kind of job. Every replica of a service
/// sweeps periodically; the records' ETags make concurrent sweeps safe, and what they may do twice (send a command,
/// re-announce a result) is harmless twice. One sweep, for each job with an active marker:
/// <list type="bullet">
/// <item>QUEUED and never sent (the broker was down when it was saved), or sent long ago and never started → send it;</item>
/// <item>RUNNING with an expired lease (its worker died or hung) → QUEUED and sent again, or FAILED once
/// <see cref="JobKernelOptions.MaxAttempts"/> attempts lost their worker (a poison job must not kill workers forever);</item>
/// <item>past its deadline → CANCELLED (QUEUED, or RUNNING without a live worker) or asked to stop (RUNNING);</item>
/// <item>final but awaiting follow-up (e.g. registration) → <c>followUp</c> again;</item>
/// <item>final, or a marker without a job → marker removed.</item>
/// </list>
/// </summary>
/// <param name="dispatch">Sends the job's command to the workers (e.g. publishes TrainModel).</param>
/// <param name="ended">Announces that the reconciler ended a job (FAILED or CANCELLED), e.g. publishes TrainingFailed.</param>
/// <param name="followUp">Does a final job's pending follow-up (may be null for job kinds without any).</param>
public sealed class JobReconciler<T>(
    JobStore<T> store,
    JobKernelOptions options,
    Func<T, CancellationToken, Task> dispatch,
    Func<T, CancellationToken, Task> ended,
    Func<T, CancellationToken, Task>? followUp,
    ILogger logger) where T : JobRecord<T>
{
    /// <summary>Lease expiry is judged with this much slack, so clock differences between hosts never steal a live job.</summary>
    public static readonly TimeSpan ClockSkew = TimeSpan.FromSeconds(5);

    /// <summary>A marker older than this whose job record does not exist is left over from a crash during creation.</summary>
    public static readonly TimeSpan OrphanMarkerAge = TimeSpan.FromMinutes(2);

    public async Task<ReconcileReport> SweepAsync(CancellationToken cancellationToken)
    {
        var active = await store.ListActiveAsync(cancellationToken).ConfigureAwait(false);
        int dispatched = 0, requeued = 0, failed = 0, cancelled = 0, followedUp = 0, retired = 0;
        foreach (var (jobId, markedAt) in active)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                var job = await store.GetAsync(jobId, cancellationToken).ConfigureAwait(false);
                var now = store.Time.GetUtcNow();
                if (job is null)
                {
                    if (markedAt is null || now - markedAt > OrphanMarkerAge)
                    {
                        await store.RetireAsync(jobId, cancellationToken).ConfigureAwait(false);
                        retired++;
                    }
                    continue;
                }

                if (job.IsTerminal)
                {
                    if (!job.NeedsFollowUp())
                    {
                        await store.RetireAsync(jobId, cancellationToken).ConfigureAwait(false);
                        retired++;
                    }
                    else if (followUp is not null && now - job.UpdatedAt >= options.FollowUpAfter)
                    {
                        await followUp(job, cancellationToken).ConfigureAwait(false);
                        followedUp++;
                    }
                    continue;
                }

                if (job.DeadlinePassed(now))
                {
                    var reason = $"its deadline {job.Deadline:O} passed";
                    var (stopped, changed) = await store.UpdateAsync(jobId, j =>
                        j.IsTerminal || (j.State == JobState.Running && j.CancelRequested) ? null
                        : j.State == JobState.Queued || j.LeaseExpired(now - ClockSkew) ? Cancelled(j, reason, now)
                        : j.RequestCancel(reason, now), cancellationToken).ConfigureAwait(false);
                    if (changed && stopped.IsTerminal)
                    {
                        cancelled++;
                        await ended(stopped, cancellationToken).ConfigureAwait(false);
                    }
                    continue;
                }

                var requeuedNow = false;
                if (job.State == JobState.Running && job.LeaseExpired(now - ClockSkew))
                {
                    var (after, changed) = await store.UpdateAsync(jobId, j =>
                    {
                        if (j.State != JobState.Running || !j.LeaseExpired(now - ClockSkew))
                            return null;
                        var queued = j.Requeue(AttemptOutcome.WorkerLost, now);
                        return queued.LostAttempts >= options.MaxAttempts ? queued.Fail(queued.LostWorkersReason(), now) : queued;
                    }, cancellationToken).ConfigureAwait(false);
                    if (!changed)
                        continue;
                    if (after.IsTerminal)
                    {
                        failed++;
                        logger.LogWarning("Job {JobId} failed: {Reason}", jobId, after.Error);
                        await ended(after, cancellationToken).ConfigureAwait(false);
                        continue;
                    }
                    requeued++;
                    logger.LogWarning("Job {JobId}: worker {Worker} stopped renewing its lease at {Progress}; " +
                        "the job is queued again (attempt {Attempt} of at most {Max}).",
                        jobId, job.Worker, job.DescribeProgress(), after.Attempts + 1, options.MaxAttempts);
                    job = after;
                    requeuedNow = true;
                }

                if (job.State == JobState.Queued && (requeuedNow || NeedsDispatch(job, now)))
                {
                    // A paused broker must not stall the sweep of every other job: bounded like a submission's send.
                    using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
                    {
                        timeout.CancelAfter(options.DispatchTimeout);
                        await dispatch(job, timeout.Token).ConfigureAwait(false);
                    }
                    await store.UpdateAsync(jobId, j => j.State == JobState.Queued ? j.Dispatched(store.Time.GetUtcNow()) : null,
                        cancellationToken).ConfigureAwait(false);
                    dispatched++;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // One job's trouble (storage blip, broker down) must not stop the sweep of the others; the next sweep retries.
                logger.LogWarning("Reconciling job {JobId} failed ({Reason}); the next sweep retries.", jobId, Faults.Reason(e));
            }
        }
        var report = new ReconcileReport(active.Count, dispatched, requeued, failed, cancelled, followedUp, retired);
        if (report.DidSomething)
            logger.LogInformation("Reconciled {Active} active jobs: {Report}", active.Count, report);
        return report;
    }

    private bool NeedsDispatch(T job, DateTimeOffset now) => job.DispatchedAt is { } sent
        ? now - sent >= options.RedispatchAfter
        : now - job.UpdatedAt >= options.DispatchGrace;

    private static T Cancelled(T job, string reason, DateTimeOffset now) =>
        job.State == JobState.Running ? job.Requeue(AttemptOutcome.WorkerLost, now).Cancel(reason, now) : job.Cancel(reason, now);
}
