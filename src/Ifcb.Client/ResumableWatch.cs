using System.Diagnostics;
using Grpc.Core;

namespace Ifcb.Client;

/// <summary>
/// Follows a job through its server-streaming watch (Training.WatchJob, Runs.WatchRun, NormStats.Watch) until it
/// ends. A watch has no deadline (a training job runs for hours); a dead server is noticed by the channel's keep-alive
/// pings, and a watch that breaks for a transient reason (the service restarted, the connection was lost, a proxy
/// closed an idle stream) is resumed: the job's state is read again and a new watch opened. Watches only read, so
/// this is always safe. Reconnecting gives up as the retry policy says, counted from the first failure in a row.
/// </summary>
public static class ResumableWatch
{
    /// <param name="call">The watch RPC's name for retry notices, e.g. "Training.WatchJob".</param>
    /// <param name="get">Reads the job's current state (a unary read, retried by the channel's policy).</param>
    /// <param name="open">Opens a watch.</param>
    /// <param name="finished">True for a state after which nothing changes.</param>
    /// <param name="update">Called with each state the watch delivers.</param>
    /// <returns>The job's final state.</returns>
    /// <exception cref="RpcException">The service could not be reached again within the policy, or refused the watch.</exception>
    public static async Task<T> FollowAsync<T>(string call, Func<CancellationToken, Task<T>> get,
        Func<CancellationToken, AsyncServerStreamingCall<T>> open, Func<T, bool> finished, Action<T> update, CallRetry retry,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(get);
        ArgumentNullException.ThrowIfNull(open);
        ArgumentNullException.ThrowIfNull(finished);
        ArgumentNullException.ThrowIfNull(update);
        ArgumentNullException.ThrowIfNull(retry);
        var last = await get(cancellationToken).ConfigureAwait(false);
        var failures = 0;
        var outage = new Stopwatch();
        while (!finished(last))
        {
            try
            {
                using var watch = open(cancellationToken);
                await foreach (var state in watch.ResponseStream.ReadAllAsync(cancellationToken).ConfigureAwait(false))
                {
                    last = state;
                    failures = 0;
                    outage.Reset();
                    update(state);
                    if (finished(state))
                        break;
                }
            }
            catch (RpcException e) when (CallRetry.IsTransient(e.StatusCode) && !cancellationToken.IsCancellationRequested)
            {
                failures++;
                outage.Start();
                var delay = retry.NextDelay(failures, outage.Elapsed);
                if (delay is null)
                    throw;
                retry.OnRetry?.Invoke(new RetryNotice(call, e, failures, retry.MaxAttempts, delay.Value));
                await Task.Delay(delay.Value, cancellationToken).ConfigureAwait(false);
            }
            // The stream ended or broke: the job's state as stored decides whether to watch again (and is the final answer,
            // with what was recorded after the last update).
            last = await get(cancellationToken).ConfigureAwait(false);
        }
        return last;
    }
}
