using Ifcb.Protos;

namespace Ifcb.Client;

/// <summary>Training jobs seen from a client: follow one to its end.</summary>
public static class TrainingJobs
{
    /// <summary>True for a state after which nothing changes.</summary>
    public static bool IsFinished(TrainingJob job)
    {
        ArgumentNullException.ThrowIfNull(job);
        return job.State is JobState.Succeeded or JobState.Failed or JobState.Cancelled;
    }

    /// <summary>
    /// Follows a job's WatchJob stream until the job ends and returns its final state. A watch that breaks (the service
    /// restarted, the connection was lost) is resumed (see <see cref="ResumableWatch"/>).
    /// </summary>
    /// <param name="epochEnded">
    /// Called once per finished epoch, in the order they are seen (also those recorded before the watch began).
    /// </param>
    /// <param name="batchDone">Called with each update of a running job inside an epoch that has not finished.</param>
    public static async Task<TrainingJob> FollowAsync(Training.TrainingClient training, string jobId, CallRetry retry,
        Action<EpochMetrics>? epochEnded = null, Action<TrainingJob>? batchDone = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(training);
        ArgumentNullException.ThrowIfNull(retry);
        var request = new JobRef { JobId = jobId };
        var shown = new HashSet<int>();
        var last = await ResumableWatch.FollowAsync("Training.WatchJob",
            token => training.GetJobAsync(request, cancellationToken: token).ResponseAsync,
            token => training.WatchJob(request, cancellationToken: token),
            IsFinished,
            update =>
            {
                foreach (var epoch in update.Epochs.Where(e => shown.Add(e.Epoch)))
                    epochEnded?.Invoke(epoch);
                if (update.State == JobState.Running && update.BatchesPerEpoch > 0 && !shown.Contains(update.Epoch))
                    batchDone?.Invoke(update);
            },
            retry, cancellationToken);
        foreach (var epoch in last.Epochs.Where(e => shown.Add(e.Epoch)))
            epochEnded?.Invoke(epoch);
        return last;
    }
}
