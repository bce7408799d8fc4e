using System.Collections.Concurrent;
using System.Diagnostics;
using Ifcb.Platform.Jobs;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.Hosting;

/// <summary>What a worker did with one delivery of a job's command.</summary>
public enum JobDelivery
{
    /// <summary>The job started here and runs in the background; the message can be acknowledged.</summary>
    Started,

    /// <summary>Nothing to do: no such job, it is final, or another worker holds its live lease (a duplicate delivery).</summary>
    Ignored,

    /// <summary>
    /// Every slot of this worker was busy when the command arrived: it was sent back to the queue (with the job's
    /// priority) for a free worker.
    /// </summary>
    HandedBack,

    /// <summary>The job ended here without running: its attempts were used up, or it was cancelled or past its deadline.</summary>
    EndedOnStart,
}

/// <summary>
/// Runs jobs on this worker in the background, a fixed number at a time (<c>Ifcb:TrainingSlots</c>).
/// <para>
/// Why jobs run after their message is acknowledged: a training job can take hours, and a broker redelivers a message
/// that is held unacknowledged longer than its consumer timeout (RabbitMQ's default is 30 minutes) — to a second
/// worker, while the first still trains. Quorum queues with a delivery limit would cap poison messages but still tie
/// long jobs to that timeout. So a worker first takes the job's lease in blob storage, then acknowledges, then works;
/// the lease (renewed by heartbeat) is what says the job is alive, and the reconciler requeues a job whose lease
/// expired and fails it after <see cref="JobKernelOptions.MaxAttempts"/> lost workers. A delivery that finds no free
/// slot free sends the command back to the queue instead of holding it — after waiting up to
/// <see cref="JobKernelOptions.SlotWait"/>, so a full worker does not spin its queue, and even when a slot frees during
/// that wait: the broker then hands the free slot the highest-priority job queued (see JobPriority), which need not be
/// the one this delivery carried. A hand-back puts the command behind the others of its priority.
/// </para>
/// On shutdown every running job is asked to stop, gives its lease back (QUEUED) and is sent again for another worker.
/// </summary>
public sealed class JobExecutor : IHostedService, IDisposable
{
    private readonly SemaphoreSlim _slots;
    private readonly CancellationTokenSource _shutdown = new();
    private readonly ConcurrentDictionary<string, Task> _running = new(StringComparer.Ordinal);
    private readonly ServiceIdentity _identity;
    private readonly JobKernelOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<JobExecutor> _logger;

    public JobExecutor(ServiceIdentity identity, JobKernelOptions options, int slots, TimeProvider time, ILogger<JobExecutor> logger)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 1);
        _identity = identity;
        _options = options;
        _time = time;
        _logger = logger;
        Slots = slots;
        _slots = new SemaphoreSlim(slots, slots);
    }

    public int Slots { get; }

    /// <summary>Jobs running on this worker now.</summary>
    public IReadOnlyCollection<string> Running => [.. _running.Keys];

    /// <summary>
    /// Takes one delivery of a job's command: starts the job here (holding a slot, in the background) if it may run
    /// here, and returns as soon as the message can be acknowledged.
    /// </summary>
    /// <param name="handBack">Sends the job's command back to the queue, with its priority (this worker was full).</param>
    /// <param name="run">The job's work; must not throw (a <see cref="JobAttemptRunner{T}"/> does not).</param>
    /// <param name="ended">Announces a job that ended on start (its attempts used up, cancelled, past its deadline).</param>
    public async Task<JobDelivery> AcceptAsync<T>(JobStore<T> store, string jobId, Func<T, CancellationToken, Task> handBack,
        Func<T, CancellationToken, Task> run, Func<T, CancellationToken, Task> ended, CancellationToken cancellationToken)
        where T : JobRecord<T>
    {
        var job = await store.GetAsync(jobId, cancellationToken);
        if (job is null)
        {
            _logger.LogWarning("A command for unknown job {JobId} arrived; ignored.", jobId);
            return JobDelivery.Ignored;
        }
        if (job.IsTerminal || (job.State == JobState.Running && !job.LeaseExpired(_time.GetUtcNow())))
            return JobDelivery.Ignored;

        if (!_slots.Wait(0, CancellationToken.None))
        {
            if (await _slots.WaitAsync(_options.SlotWait, cancellationToken))
                _slots.Release();
            await handBack(job, cancellationToken);
            return JobDelivery.HandedBack;
        }
        var slotHeld = true;
        try
        {
            var (current, changed) = await store.UpdateAsync(jobId, j =>
            {
                var now = _time.GetUtcNow();
                if (j.IsTerminal || (j.State == JobState.Running && !j.LeaseExpired(now)))
                    return null;
                if (j.DeadlinePassed(now))
                {
                    return j.State == JobState.Running
                        ? j.Requeue(AttemptOutcome.WorkerLost, now).Cancel($"its deadline {j.Deadline:O} passed", now)
                        : j.Cancel($"its deadline {j.Deadline:O} passed", now);
                }
                var next = j.State == JobState.Running ? j.Requeue(AttemptOutcome.WorkerLost, now) : j;
                return next.LostAttempts >= _options.MaxAttempts
                    ? next.Fail(next.LostWorkersReason(), now)
                    : next.Start(_identity.InstanceId, now, _options.LeaseDuration);
            }, cancellationToken);
            if (!changed)
                return JobDelivery.Ignored;
            if (current.IsTerminal)
            {
                await ended(current, cancellationToken);
                return JobDelivery.EndedOnStart;
            }

            _running[jobId] = Task.Run(async () =>
            {
                try
                {
                    await run(current, _shutdown.Token);
                }
                catch (Exception e)
                {
                    // The runner records every failure itself; reaching here is a bug, and it must not kill the worker.
                    _logger.LogCritical(e, "Job {JobId} escaped its runner on {Worker}", jobId, _identity.InstanceId);
                }
                finally
                {
                    _running.TryRemove(jobId, out _);
                    _slots.Release();
                }
            }, CancellationToken.None);
            slotHeld = false; // the background task releases it
            return JobDelivery.Started;
        }
        finally
        {
            if (slotHeld)
                _slots.Release();
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Asks every running job to give its lease back and waits for them (within the host's shutdown timeout).</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _shutdown.CancelAsync();
        var running = _running.Values.ToArray();
        if (running.Length == 0)
            return;
        _logger.LogInformation("Stopping: releasing {Count} running job(s)", running.Length);
        var watch = Stopwatch.StartNew();
        try
        {
            await Task.WhenAll(running).WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            _logger.LogWarning("Shutdown timed out after {Seconds:0.#} s with jobs still stopping; " +
                "their leases expire and the reconciler requeues them.", watch.Elapsed.TotalSeconds);
        }
    }

    public void Dispose()
    {
        _shutdown.Dispose();
        _slots.Dispose();
    }
}
