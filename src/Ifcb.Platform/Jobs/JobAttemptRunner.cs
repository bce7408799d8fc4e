using System.Globalization;
using Microsoft.Extensions.Logging;

namespace Ifcb.Platform.Jobs;

/// <summary>How an attempt's work ended, as the work itself reports it; <see cref="Finish"/> adds its results to the record.</summary>
public sealed record JobCompletion<T>(JobState State, string? Reason, Func<T, T>? Finish) where T : JobRecord<T>
{
    public static JobCompletion<T> Success(Func<T, T>? finish = null) => new(JobState.Succeeded, null, finish);

    /// <summary>The work stopped because <see cref="JobLease{T}.StopRequested"/> fired (cancel request, deadline).</summary>
    public static JobCompletion<T> Stopped(Func<T, T>? finish = null) => new(JobState.Cancelled, null, finish);

    /// <summary>The job's own fault (bad data, bad options): it fails with <paramref name="reason"/>.</summary>
    public static JobCompletion<T> Failure(string reason, Func<T, T>? finish = null) => new(JobState.Failed, reason, finish);
}

public enum JobRunOutcome
{
    /// <summary>The job reached a final state in this attempt (see the record's State).</summary>
    Ended,

    /// <summary>Another worker holds the job now (or it ended elsewhere); this worker wrote nothing.</summary>
    LeaseLost,

    /// <summary>The worker is shutting down and gave the job back (QUEUED); the caller sends its command again.</summary>
    Released,
}

public sealed record JobRunResult<T>(JobRunOutcome Outcome, T Job) where T : JobRecord<T>;

/// <summary>
/// Runs one attempt of a job whose lease this worker holds, and decides what its end means:
/// <list type="bullet">
/// <item>a transient fault (storage, broker or a peer down; <see cref="Faults.IsTransient"/>) → wait with backoff and run
/// the work again (it resumes from its own saved state); the job stays RUNNING; only after
/// <see cref="JobKernelOptions.TransientRetryBudget"/> of continuous failures does it fail, saying which dependency;</item>
/// <item>a cancel request or a passed deadline → CANCELLED with that reason;</item>
/// <item>the worker shutting down → the job is released (QUEUED) for another worker, not counted as an attempt lost;</item>
/// <item>the lease taken over → stop without writing;</item>
/// <item>anything else is the job's own fault → FAILED with a one-line reason (no stack, no host paths); the full
/// exception goes to the log.</item>
/// </list>
/// Nothing thrown by the work escapes: the caller always gets a result.
/// </summary>
public sealed class JobAttemptRunner<T>(JobStore<T> store, JobKernelOptions options, ILogger logger) where T : JobRecord<T>
{
    public async Task<JobRunResult<T>> RunAsync(T started, string worker,
        Func<JobLease<T>, CancellationToken, Task<JobCompletion<T>>> work, CancellationToken shutdown)
    {
        ArgumentNullException.ThrowIfNull(started);
        ArgumentNullException.ThrowIfNull(work);
        await using var lease = new JobLease<T>(store, started, worker, options, logger);
        DateTimeOffset? outageSince = null;
        for (var retry = 0; ; retry++)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(lease.Lost, lease.StopRequested, shutdown);
            JobCompletion<T> completion;
            try
            {
                completion = await work(lease, linked.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (lease.Lost.IsCancellationRequested || e is LeaseLostException)
            {
                logger.LogWarning("Job {JobId}: {Worker} lost its lease; the attempt stops without writing.", lease.JobId, worker);
                return new(JobRunOutcome.LeaseLost, lease.Job);
            }
            catch (OperationCanceledException) when (lease.StopRequested.IsCancellationRequested)
            {
                completion = JobCompletion<T>.Stopped();
            }
            catch (Exception) when (shutdown.IsCancellationRequested)
            {
                return await ReleaseAsync(lease).ConfigureAwait(false);
            }
            catch (Exception e) when (Faults.IsTransient(e))
            {
                var now = store.Time.GetUtcNow();
                outageSince ??= now;
                if (now - outageSince.Value < options.TransientRetryBudget)
                {
                    var pause = options.TransientBackoff(retry);
                    logger.LogWarning(
                        "Job {JobId}: transient fault ({Reason}); retrying in {Seconds:0.#} s, resuming from its saved state.",
                        lease.JobId, Faults.Reason(e), pause.TotalSeconds);
                    try
                    {
                        await Task.Delay(pause, store.Time, linked.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        // The next round sees why (stop, takeover or shutdown) and ends accordingly.
                    }
                    continue;
                }
                completion = JobCompletion<T>.Failure(string.Create(CultureInfo.InvariantCulture,
                    $"A dependency stayed unavailable for {options.TransientRetryBudget.TotalMinutes:0.#} minutes: {Faults.Reason(e)}"));
            }
            catch (Exception e)
            {
                logger.LogError(e, "Job {JobId} failed on {Worker}", lease.JobId, worker);
                completion = JobCompletion<T>.Failure(Faults.Reason(e));
            }

            if (completion.State == JobState.Cancelled && !lease.StopRequested.IsCancellationRequested)
            {
                // The work stopped without a cancel request: the worker is going away, or the lease is gone.
                if (lease.Lost.IsCancellationRequested)
                    return new(JobRunOutcome.LeaseLost, lease.Job);
                if (shutdown.IsCancellationRequested)
                    return await ReleaseAsync(lease).ConfigureAwait(false);
            }
            return await EndAsync(lease, completion).ConfigureAwait(false);
        }
    }

    private Task<JobRunResult<T>> EndAsync(JobLease<T> lease, JobCompletion<T> completion) =>
        WriteFinalAsync(lease, JobRunOutcome.Ended, job =>
        {
            var now = store.Time.GetUtcNow();
            var finished = completion.Finish is { } finish ? finish(job) : job;
            return completion.State switch
            {
                JobState.Succeeded => finished.Succeed(now),
                JobState.Failed => finished.Fail(completion.Reason ?? "failed", now),
                _ => finished.Cancel(lease.StopReason ?? "cancelled", now),
            };
        });

    private Task<JobRunResult<T>> ReleaseAsync(JobLease<T> lease)
    {
        logger.LogInformation("Job {JobId}: {Worker} is shutting down; the job goes back to the queue.", lease.JobId, lease.Worker);
        return WriteFinalAsync(lease, JobRunOutcome.Released, job => job.Requeue(AttemptOutcome.Released, store.Time.GetUtcNow()));
    }

    /// <summary>
    /// Writes the attempt's last change if this worker still holds the job, riding out storage outages within the
    /// transient budget (the record is the system of record: the result must not be lost to a blip).
    /// </summary>
    private async Task<JobRunResult<T>> WriteFinalAsync(JobLease<T> lease, JobRunOutcome outcome, Func<T, T> change)
    {
        var started = store.Time.GetUtcNow();
        for (var retry = 0; ; retry++)
        {
            try
            {
                var lost = false;
                var (job, _) = await store.UpdateAsync(lease.JobId, current =>
                {
                    lost = current.State != JobState.Running || current.Worker != lease.Worker;
                    return lost ? null : change(current);
                }, CancellationToken.None).ConfigureAwait(false);
                return new(lost ? JobRunOutcome.LeaseLost : outcome, job);
            }
            catch (Exception e) when (Faults.IsTransient(e) && store.Time.GetUtcNow() - started < options.TransientRetryBudget)
            {
                logger.LogWarning("Job {JobId}: could not record the end of the attempt ({Reason}); retrying.",
                    lease.JobId, Faults.Reason(e));
                await Task.Delay(options.TransientBackoff(retry), store.Time).ConfigureAwait(false);
            }
        }
    }
}
