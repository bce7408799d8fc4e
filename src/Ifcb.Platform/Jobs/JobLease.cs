using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ifcb.Platform.Jobs;

/// <summary>
/// A worker's hold on a RUNNING job: renews the lease every <see cref="JobKernelOptions.HeartbeatInterval"/> and turns
/// what it reads back into signals for the running attempt — <see cref="Lost"/> when another worker took the job over
/// or it ended elsewhere (stop at once, write nothing), <see cref="StopRequested"/> when a user cancelled it or its
/// deadline passed (stop at the next batch and record CANCELLED). A renewal that fails because storage is down is
/// simply tried again at the next beat: the lease may then expire, and whether another worker took over is decided by
/// the record's ETag when storage is back.
/// </summary>
public sealed class JobLease<T> : IAsyncDisposable where T : JobRecord<T>
{
    private readonly JobStore<T> _store;
    private readonly JobKernelOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _lost = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly CancellationTokenSource _disposed = new();
    private readonly Task _heartbeat;
    private T _latest;

    public JobLease(JobStore<T> store, T job, string worker, JobKernelOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(job);
        _store = store;
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _latest = job;
        Worker = worker;
        Observe(job);
        _heartbeat = Task.Run(HeartbeatLoopAsync);
    }

    public string Worker { get; }

    public string JobId => _latest.JobId;

    /// <summary>The newest record this worker has seen (from its heartbeats and its own writes).</summary>
    public T Job => Volatile.Read(ref _latest);

    /// <summary>Cancelled when the lease is lost: another worker holds the job, or it ended elsewhere.</summary>
    public CancellationToken Lost => _lost.Token;

    /// <summary>Cancelled when the job should stop: a user's cancel request, or its deadline passed.</summary>
    public CancellationToken StopRequested => _stop.Token;

    /// <summary>Why <see cref="StopRequested"/> fired.</summary>
    public string? StopReason { get; private set; }

    /// <summary>
    /// Reports a record this worker read or wrote (e.g. a progress update), so a cancel request or a takeover is noticed
    /// at once instead of at the next heartbeat.
    /// </summary>
    public void Observe(T job)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (job.UpdatedAt >= Job.UpdatedAt)
            Volatile.Write(ref _latest, job);
        var now = _store.Time.GetUtcNow();
        if (job.State != JobState.Running || job.Worker != Worker)
        {
            Signal(_lost);
            return;
        }
        if (job.CancelRequested)
            RequestStop(job.CancelReason ?? "cancelled by a user");
        else if (job.DeadlinePassed(now))
            RequestStop($"its deadline {job.Deadline:O} passed");
    }

    private void RequestStop(string reason)
    {
        if (_stop.IsCancellationRequested)
            return;
        StopReason = reason;
        Signal(_stop);
    }

    private static void Signal(CancellationTokenSource source)
    {
        try
        {
            source.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private async Task HeartbeatLoopAsync()
    {
        var token = _disposed.Token;
        while (!token.IsCancellationRequested && !_lost.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_options.HeartbeatInterval, _store.Time, token).ConfigureAwait(false);
                var (job, _) = await _store
                    .UpdateAsync(JobId, j => j.Heartbeat(Worker, _store.Time.GetUtcNow(), _options.LeaseDuration), token)
                    .ConfigureAwait(false);
                Observe(job);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (LeaseLostException e)
            {
                _logger.LogWarning("{Message} It stops here; the job continues where its record says.", e.Message);
                Signal(_lost);
                return;
            }
            catch (IfcbException e) when (e.Kind == ErrorKind.NotFound)
            {
                _logger.LogWarning("Job {JobId} vanished from storage while {Worker} ran it; stopping.", JobId, Worker);
                Signal(_lost);
                return;
            }
            catch (Exception e) when (Faults.IsTransient(e))
            {
                _logger.LogWarning("Could not renew the lease of job {JobId} ({Reason}); trying again at the next beat.",
                    JobId, Faults.Reason(e));
            }
            catch (Exception e)
            {
                // A heartbeat must never take the worker down; an unexpected failure is logged and retried.
                _logger.LogError(e, "Renewing the lease of job {JobId} failed unexpectedly; trying again at the next beat.", JobId);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _disposed.CancelAsync().ConfigureAwait(false);
        try
        {
            await _heartbeat.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _disposed.Dispose();
        _lost.Dispose();
        _stop.Dispose();
    }
}
