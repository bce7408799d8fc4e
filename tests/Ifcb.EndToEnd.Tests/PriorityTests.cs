using System.Diagnostics;
using Grpc.Core;
using Ifcb.Client;
using Ifcb.Protos;
using Ifcb.Testing;

namespace Ifcb.EndToEnd.Tests;

/// <summary>A platform with one Training worker (one slot), so the order in which queued jobs start is observable.</summary>
public sealed class OneWorkerPlatform : PlatformFixture
{
    protected override IEnumerable<string> AppHostArgs => ["Ifcb:TrainingReplicas=1", "Ifcb:NormStatsReplicas=1"];
}

[CollectionDefinition(Name)]
public sealed class OneWorkerCollection : ICollectionFixture<OneWorkerPlatform>
{
    public const string Name = "one-worker";
}

/// <summary>Job priorities on the workers' one priority queue (training-jobs).</summary>
[Collection(OneWorkerCollection.Name)]
public sealed class PriorityTests(OneWorkerPlatform platform)
{
    private static readonly string Sample = Path.Combine(RepoPaths.Root, "testdata", "training-sample");
    private Ifcb.Protos.Training.TrainingClient Training => new(platform.Channel("training"));
    private Datasets.DatasetsClient Datasets => new(platform.Channel("training"));

    private static StartTrainingRequest Job(string trainId, string priority, int emax) => new()
    {
        Dataset = "sample-priority", Model = "resnet18", TrainId = trainId, Untrain = true, Seed = 7, Resize = 32, Batch = 8,
        Emax = emax, Emin = 1, EstopDisabled = true, Priority = priority,
    };

    private async Task<TrainingJob> WaitAsync(string jobId, Func<TrainingJob, bool> until, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var job = await Training.GetJobAsync(new JobRef { JobId = jobId });
            if (until(job))
                return job;
            if (watch.Elapsed > timeout)
                throw new TimeoutException($"Job {jobId} is {job.State} after {timeout}.");
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task With_the_worker_busy_a_high_priority_job_queued_after_two_normal_ones_starts_first()
    {
        await DatasetUpload.UploadFolderAsync(Datasets, "sample-priority", Sample, PlatformFixture.Auth);
        var busy = await Training.StartTrainingAsync(Job("busy", "normal", emax: 200), PlatformFixture.Auth);
        await WaitAsync(busy.JobId, j => j.State == JobState.Running, TimeSpan.FromMinutes(2));

        var normal1 = await Training.StartTrainingAsync(Job("normal-1", "", emax: 1), PlatformFixture.Auth);
        var normal2 = await Training.StartTrainingAsync(Job("normal-2", "normal", emax: 1), PlatformFixture.Auth);
        var high = await Training.StartTrainingAsync(Job("high", "high", emax: 1), PlatformFixture.Auth);
        Assert.Equal(["normal", "normal", "high"], new[] { normal1, normal2, high }.Select(j => j.Priority));
        // Let the worker's deliveries cycle through the queue (each waits SlotWait, 2 s, then is handed back) so the test
        // does not depend on which command the worker happens to hold when the slot frees.
        await Task.Delay(TimeSpan.FromSeconds(5));
        Assert.Equal(JobState.Queued, (await Training.GetJobAsync(new JobRef { JobId = high.JobId })).State);

        await Training.CancelJobAsync(new JobRef { JobId = busy.JobId }, PlatformFixture.Auth);
        var started = await WaitAsync(high.JobId, j => j.State != JobState.Queued, TimeSpan.FromMinutes(2));
        var others = await Task.WhenAll(new[] { normal1, normal2 }.Select(j => Training.GetJobAsync(new JobRef { JobId = j.JobId }).ResponseAsync));
        Assert.All(others, j => Assert.Equal(JobState.Queued, j.State));
        Assert.NotEqual(JobState.Failed, started.State);

        // The normal jobs run after it, in turn, on the one worker.
        foreach (var job in others)
        {
            var done = await WaitAsync(job.JobId, j => j.State is JobState.Succeeded or JobState.Failed or JobState.Cancelled,
                TimeSpan.FromMinutes(3));
            Assert.Equal(JobState.Succeeded, done.State);
            Assert.True(DateTimeOffset.Parse(done.AttemptHistory[0].StartedAt, System.Globalization.CultureInfo.InvariantCulture)
                > DateTimeOffset.Parse(started.AttemptHistory[0].StartedAt, System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    [Fact]
    public async Task An_unknown_priority_is_refused_with_the_accepted_values()
    {
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await Training.StartTrainingAsync(Job("bad-priority", "urgent", emax: 1), PlatformFixture.Auth));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("use low, normal (default) or high", error.Status.Detail);
    }
}
