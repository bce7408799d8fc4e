using System.Globalization;
using System.Text.Json.Serialization;

namespace Ifcb.Platform.Jobs;

/// <summary>Where a job is in its life. QUEUED and RUNNING are active; the other three are final.</summary>
public enum JobState { Queued, Running, Succeeded, Failed, Cancelled }

/// <summary>How one attempt at a job ended.</summary>
public enum AttemptOutcome
{
    /// <summary>The job reached a final state in this attempt.</summary>
    Finished,

    /// <summary>The worker stopped renewing its lease (it died, hung or lost storage): counts towards the attempt limit.</summary>
    WorkerLost,

    /// <summary>The worker gave the job back (it was shutting down): does not count towards the attempt limit.</summary>
    Released,
}

/// <summary>One attempt at running a job: which worker, when, how it ended and how far it got.</summary>
public sealed record JobAttempt
{
    public required int Number { get; init; }
    public required string Worker { get; init; }
    public required DateTimeOffset StartedAt { get; init; }
    public DateTimeOffset? EndedAt { get; init; }
    /// <summary>Null while the attempt runs.</summary>
    public AttemptOutcome? Outcome { get; init; }
    /// <summary>How far the job had got when the attempt ended (e.g. "epoch 3", "7 of 12 bins").</summary>
    public string? Progress { get; init; }
    /// <summary>How this attempt got its dataset: shards fetched from storage and taken from the worker's cache.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public DatasetFetch? Dataset { get; init; }
    /// <summary>When this attempt's first training batch was read (training jobs only).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public DateTimeOffset? FirstBatchAt { get; init; }
}

/// <summary>
/// What one job attempt fetched to read its dataset: dataset shards downloaded from storage (and their bytes) and shards
/// the worker's shared cache already held; <see cref="ReadyAt"/> is when every shard was local.
/// </summary>
public sealed record DatasetFetch(int ShardsDownloaded, long BytesDownloaded, int ShardsCached, DateTimeOffset ReadyAt);

/// <summary>
/// A job as stored in blob storage: the system of record for its state, shared by training jobs, RUN jobs and
/// norm-stats jobs. Every state change is a method here that checks the current state and refuses an illegal move with
/// FailedPrecondition — consumers never write <c>State</c> themselves.
/// <para>
/// While RUNNING, one worker holds the job's <em>lease</em> (<see cref="Worker"/>, <see cref="LeaseExpiresAt"/>) and
/// renews it by heartbeat; a lease that expires means the worker died, and the reconciler requeues the job or, after
/// <see cref="JobKernelOptions.MaxAttempts"/> lost attempts, fails it. A second delivery of the job's command finds the
/// lease held and does nothing, so a job never runs twice at once.
/// </para>
/// </summary>
/// <typeparam name="TSelf">The concrete record, so transitions return it.</typeparam>
public abstract record JobRecord<TSelf> where TSelf : JobRecord<TSelf>
{
    public required string JobId { get; init; }
    public JobState State { get; init; } = JobState.Queued;
    public DateTimeOffset CreatedAt { get; init; } = DateTimeOffset.UtcNow;
    public DateTimeOffset UpdatedAt { get; init; } = DateTimeOffset.UtcNow;
    /// <summary>When the job reached its final state.</summary>
    public DateTimeOffset? EndedAt { get; init; }
    /// <summary>When its command message was last handed to the broker; null = saved but not (yet) sent.</summary>
    public DateTimeOffset? DispatchedAt { get; init; }
    /// <summary>Past this time the job is cancelled with that reason; null = no deadline.</summary>
    public DateTimeOffset? Deadline { get; init; }
    /// <summary>Which queued job a free worker starts first (see <see cref="JobPriority"/>); records written before
    /// priorities existed read as <see cref="JobPriority.Normal"/>.</summary>
    public JobPriority Priority { get; init; } = JobPriority.Normal;
    /// <summary>The worker instance holding the lease (RUNNING), or the last one that ran it.</summary>
    public string? Worker { get; init; }
    public DateTimeOffset? LeaseExpiresAt { get; init; }
    /// <summary>Attempts started so far (a resume after a lost worker is a new attempt).</summary>
    public int Attempts { get; init; }
    public List<JobAttempt> AttemptHistory { get; init; } = [];
    public bool CancelRequested { get; init; }
    public string? CancelReason { get; init; }
    /// <summary>Why the job failed or was cancelled: one line, no stack, no host paths.</summary>
    public string? Error { get; init; }

    [JsonIgnore]
    public bool IsTerminal => State is JobState.Succeeded or JobState.Failed or JobState.Cancelled;

    /// <summary>Attempts that ended because their worker stopped renewing the lease.</summary>
    [JsonIgnore]
    public int LostAttempts => AttemptHistory.Count(a => a.Outcome == AttemptOutcome.WorkerLost);

    /// <summary>How far the job has got, for attempt records and failure reasons (e.g. "epoch 3 of 20").</summary>
    public abstract string DescribeProgress();

    /// <summary>
    /// True while a final job still has work for the reconciler (e.g. a succeeded training job not yet registered);
    /// its active marker is kept until then.
    /// </summary>
    public virtual bool NeedsFollowUp() => false;

    public bool HoldsLease(string worker, DateTimeOffset now) =>
        State == JobState.Running && Worker == worker && LeaseExpiresAt > now;

    /// <summary>
    /// True for a RUNNING job whose lease holder stopped renewing it (never for a job spread over many workers, see
    /// <see cref="Begin"/>).
    /// </summary>
    public bool LeaseExpired(DateTimeOffset now) => State == JobState.Running && Worker is not null && !(LeaseExpiresAt > now);

    public bool DeadlinePassed(DateTimeOffset now) => Deadline is { } deadline && now >= deadline;

    /// <summary>QUEUED → RUNNING on <paramref name="worker"/>, holding the lease until now + <paramref name="lease"/>.</summary>
    /// <exception cref="IfcbException">FailedPrecondition: the job is final, or RUNNING with a live lease.</exception>
    public TSelf Start(string worker, DateTimeOffset now, TimeSpan lease)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(worker);
        if (IsTerminal)
            throw Illegal($"start it on {worker}");
        if (State == JobState.Running && !LeaseExpired(now))
            throw Illegal($"start it on {worker}: {Worker} holds its lease until {LeaseExpiresAt:O}");
        var self = State == JobState.Running ? EndAttempt(AttemptOutcome.WorkerLost, now) : this;
        return (TSelf)(self with
        {
            State = JobState.Running,
            Worker = worker,
            LeaseExpiresAt = now + lease,
            Attempts = Attempts + 1,
            AttemptHistory = [.. self.AttemptHistory, new JobAttempt { Number = Attempts + 1, Worker = worker, StartedAt = now }],
        });
    }

    /// <summary>
    /// QUEUED → RUNNING for a job whose work is spread over many workers at once (a norm-stats job's shards): no single
    /// worker holds a lease; each unit of work counts its own attempts. A RUNNING job is returned unchanged.
    /// </summary>
    /// <exception cref="IfcbException">FailedPrecondition: the job is final.</exception>
    public TSelf Begin(DateTimeOffset now)
    {
        if (IsTerminal)
            throw Illegal("begin it");
        return State == JobState.Running
            ? (TSelf)this
            : (TSelf)(this with { State = JobState.Running, Worker = null, LeaseExpiresAt = null });
    }

    /// <summary>Renews the lease of the worker holding it.</summary>
    /// <exception cref="LeaseLostException">The job is no longer RUNNING on <paramref name="worker"/>.</exception>
    public TSelf Heartbeat(string worker, DateTimeOffset now, TimeSpan lease)
    {
        if (State != JobState.Running || Worker != worker)
            throw new LeaseLostException(JobId, worker, IsTerminal ? $"it is {StateName}" : $"{Worker ?? "nobody"} holds it now");
        return (TSelf)(this with { LeaseExpiresAt = now + lease });
    }

    /// <summary>
    /// RUNNING → QUEUED: the attempt ended with <paramref name="outcome"/> (the worker was lost, or released the job) and
    /// the job waits to be sent out again.
    /// </summary>
    public TSelf Requeue(AttemptOutcome outcome, DateTimeOffset now)
    {
        if (State != JobState.Running)
            throw Illegal("requeue it");
        return (TSelf)(EndAttempt(outcome, now) with { State = JobState.Queued, LeaseExpiresAt = null, DispatchedAt = null });
    }

    /// <summary>→ SUCCEEDED.</summary>
    public TSelf Succeed(DateTimeOffset now) => End(JobState.Succeeded, null, now);

    /// <summary>→ FAILED with a one-line reason.</summary>
    public TSelf Fail(string reason, DateTimeOffset now) => End(JobState.Failed, reason, now);

    /// <summary>→ CANCELLED with the reason (the user's request, a passed deadline).</summary>
    public TSelf Cancel(string reason, DateTimeOffset now) => End(JobState.Cancelled, reason, now);

    /// <summary>
    /// Asks the job to stop: a QUEUED job is cancelled at once, a RUNNING one is flagged and its worker stops at the next
    /// batch or bin. A final job is returned unchanged (cancelling is idempotent).
    /// </summary>
    public TSelf RequestCancel(string reason, DateTimeOffset now) => State switch
    {
        JobState.Queued => Cancel(reason, now) with { CancelRequested = true, CancelReason = reason },
        JobState.Running => (TSelf)(this with { CancelRequested = true, CancelReason = reason }),
        _ => (TSelf)this,
    };

    /// <summary>The same record stamped with the time of a write (the store calls this on every write).</summary>
    internal TSelf Touched(DateTimeOffset now) => (TSelf)(this with { UpdatedAt = now });

    /// <summary>The same record stamped as created now (the store calls this when it stores a new job).</summary>
    internal TSelf Created(DateTimeOffset now) => (TSelf)(this with { CreatedAt = now, UpdatedAt = now });

    /// <summary>Records that the job's command was handed to the broker.</summary>
    public TSelf Dispatched(DateTimeOffset now) => (TSelf)(this with { DispatchedAt = now });

    /// <summary>Sets when the job is cancelled if it has not ended; bounded by <see cref="Limits.MaxJobDeadline"/>.</summary>
    /// <exception cref="IfcbException">InvalidArgument: the deadline is in the past or too far away.</exception>
    public TSelf WithDeadline(DateTimeOffset? deadline, DateTimeOffset now)
    {
        if (deadline is { } at && (at <= now || at - now > Limits.MaxJobDeadline))
            throw IfcbException.InvalidArgument(string.Create(CultureInfo.InvariantCulture,
                $"deadline {at:O} must be in the future and at most {Limits.MaxJobDeadline.TotalDays:0} days away " +
                $"(limit {nameof(Limits.MaxJobDeadline)})."));
        return (TSelf)(this with { Deadline = deadline });
    }

    /// <summary>The reason a job that lost its workers too often fails with: attempts, instances and how far it got.</summary>
    public string LostWorkersReason()
    {
        var lost = AttemptHistory.Where(a => a.Outcome == AttemptOutcome.WorkerLost).ToList();
        var workers = string.Join(", ", lost.Select(a => a.Worker).Distinct());
        return string.Create(CultureInfo.InvariantCulture,
            $"The job stopped its worker {lost.Count} times (attempts {string.Join(", ", lost.Select(a => a.Number))} on {workers}); " +
            $"last at {DescribeProgress()}. It is failed instead of retried; check the workers' logs for the crash, " +
            $"fix the input or the options, and start a new job.");
    }

    protected string StateName => State.ToString().ToUpperInvariant();

    private TSelf End(JobState state, string? reason, DateTimeOffset now)
    {
        if (IsTerminal)
            throw Illegal($"make it {state.ToString().ToUpperInvariant()}");
        var ended = State == JobState.Running ? EndAttempt(AttemptOutcome.Finished, now) : this;
        return (TSelf)(ended with { State = state, Error = reason, EndedAt = now, LeaseExpiresAt = null });
    }

    /// <summary>The record with its running attempt changed (unchanged when no attempt is running).</summary>
    public TSelf WithCurrentAttempt(Func<JobAttempt, JobAttempt> change)
    {
        ArgumentNullException.ThrowIfNull(change);
        if (AttemptHistory.Count == 0 || AttemptHistory[^1].Outcome is not null)
            return (TSelf)this;
        return (TSelf)(this with { AttemptHistory = [.. AttemptHistory.Take(AttemptHistory.Count - 1), change(AttemptHistory[^1])] });
    }

    private JobRecord<TSelf> EndAttempt(AttemptOutcome outcome, DateTimeOffset now)
    {
        if (AttemptHistory.Count == 0 || AttemptHistory[^1].Outcome is not null)
            return this;
        var last = AttemptHistory[^1] with { EndedAt = now, Outcome = outcome, Progress = DescribeProgress() };
        return this with { AttemptHistory = [.. AttemptHistory.Take(AttemptHistory.Count - 1), last] };
    }

    private IfcbException Illegal(string what) =>
        IfcbException.FailedPrecondition($"Job {JobId} is {StateName}; cannot {what}.");
}

/// <summary>The worker no longer holds the job's lease (another worker took it over, or the job ended); it must stop.</summary>
public sealed class LeaseLostException(string jobId, string worker, string why)
    : Exception($"Worker {worker} lost the lease of job {jobId}: {why}.")
{
    public string JobId { get; } = jobId;
}
