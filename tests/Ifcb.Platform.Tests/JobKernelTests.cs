using System.Collections.Concurrent;
using System.Text.Json;
using Azure;
using Ifcb.Platform.Jobs;
using Ifcb.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Ifcb.Platform.Tests;

/// <summary>A job kind for the kernel's tests: progress is a step counter.</summary>
public sealed record TestJob : JobRecord<TestJob>
{
    public int Step { get; init; }
    public bool Announced { get; init; }

    public override string DescribeProgress() => $"step {Step}";

    public override bool NeedsFollowUp() => State == JobState.Succeeded && !Announced;
}

public sealed class AzuriteFixture : IAsyncLifetime
{
    public AzuriteInstance Azurite { get; private set; } = null!;

    public async Task InitializeAsync() => Azurite = await AzuriteInstance.StartAsync();

    public async Task DisposeAsync() => await Azurite.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class AzuriteCollection : ICollectionFixture<AzuriteFixture>
{
    public const string Name = "Azurite";
}

[Collection(AzuriteCollection.Name)]
public sealed class JobKernelTests(AzuriteFixture fixture)
{
    private static readonly JobKernelOptions Options = new()
    {
        LeaseDuration = TimeSpan.FromSeconds(30),
        HeartbeatInterval = TimeSpan.FromSeconds(10),
        MaxAttempts = 3,
        DispatchGrace = TimeSpan.FromSeconds(15),
        TransientRetryBudget = TimeSpan.FromMinutes(5),
        TransientMaxBackoff = TimeSpan.FromMilliseconds(20),
    };

    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-12-01T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    private async Task<JobStore<TestJob>> NewStoreAsync() =>
        new(await fixture.Azurite.CreateContainerAsync("jobs"), "jobs/", new JsonSerializerOptions(JsonSerializerDefaults.Web), _time);

    private static TestJob NewJob() => new() { JobId = JobStore<TestJob>.NewId() };

    [Fact]
    public async Task Two_deliveries_racing_to_start_one_job_start_it_once()
    {
        var store = await NewStoreAsync();
        var job = await store.CreateAsync(NewJob(), default);

        var starts = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(async () =>
        {
            try
            {
                var (_, changed) = await store.UpdateAsync(job.JobId, j => j.Start($"worker-{i}", _time.GetUtcNow(), Options.LeaseDuration), default);
                return changed;
            }
            catch (IfcbException e) when (e.Kind == ErrorKind.FailedPrecondition)
            {
                return false;
            }
        })));

        Assert.Single(starts, started => started);
        var stored = await store.GetAsync(job.JobId, default);
        Assert.Equal(JobState.Running, stored!.State);
        Assert.Equal(1, stored.Attempts);
    }

    [Fact]
    public async Task A_job_whose_worker_stops_heartbeating_is_requeued_and_after_three_lost_workers_fails_naming_them()
    {
        var store = await NewStoreAsync();
        var job = await store.CreateAsync(NewJob(), default);
        var sent = new ConcurrentQueue<string>();
        var ended = new ConcurrentQueue<TestJob>();
        var reconciler = new JobReconciler<TestJob>(store, Options, (j, _) => { sent.Enqueue(j.JobId); return Task.CompletedTask; },
            (j, _) => { ended.Enqueue(j); return Task.CompletedTask; }, null, NullLogger.Instance);

        for (var attempt = 1; attempt <= 3; attempt++)
        {
            await store.UpdateAsync(job.JobId, j => j.Start($"training-host-{attempt}", _time.GetUtcNow(), Options.LeaseDuration) with { Step = attempt * 10 }, default);
            _time.Advance(TimeSpan.FromSeconds(20));
            Assert.False((await reconciler.SweepAsync(default)).DidSomething); // lease still live
            _time.Advance(TimeSpan.FromSeconds(20)); // 40 s without a heartbeat: expired beyond the clock skew
            await reconciler.SweepAsync(default);
        }

        var failed = await store.GetAsync(job.JobId, default);
        Assert.Equal(JobState.Failed, failed!.State);
        Assert.Equal(3, failed.LostAttempts);
        Assert.Contains("stopped its worker 3 times", failed.Error);
        Assert.Contains("training-host-1, training-host-2, training-host-3", failed.Error);
        Assert.Contains("step 30", failed.Error);
        Assert.Equal(2, sent.Count); // requeued and sent after the first two losses, not after the third
        Assert.Single(ended);
        Assert.Empty(await store.ListActiveAsync(default)); // a failed job leaves the reconciler's list
    }

    [Fact]
    public async Task A_job_saved_while_the_broker_was_down_is_sent_by_the_reconciler_once_the_grace_passed()
    {
        var store = await NewStoreAsync();
        var job = await store.CreateAsync(NewJob(), default);
        var sent = new ConcurrentQueue<string>();
        var brokerUp = false;
        var reconciler = new JobReconciler<TestJob>(store, Options, (j, _) =>
        {
            if (!brokerUp)
                throw new RequestFailedException(0, "broker unreachable");
            sent.Enqueue(j.JobId);
            return Task.CompletedTask;
        }, (_, _) => Task.CompletedTask, null, NullLogger.Instance);

        await reconciler.SweepAsync(default);
        Assert.Empty(sent); // within the grace the submitting call may still send it

        _time.Advance(TimeSpan.FromSeconds(16));
        await reconciler.SweepAsync(default); // broker still down: the sweep survives and retries later
        Assert.Null((await store.GetAsync(job.JobId, default))!.DispatchedAt);

        brokerUp = true;
        await reconciler.SweepAsync(default);
        Assert.Equal([job.JobId], sent);
        Assert.NotNull((await store.GetAsync(job.JobId, default))!.DispatchedAt);

        await reconciler.SweepAsync(default);
        Assert.Single(sent); // sent once, not on every sweep
    }

    [Fact]
    public async Task Past_its_deadline_a_queued_job_is_cancelled_and_a_running_one_is_asked_to_stop()
    {
        var store = await NewStoreAsync();
        var queued = await store.CreateAsync(NewJob().WithDeadline(_time.GetUtcNow().AddMinutes(1), _time.GetUtcNow()), default);
        var running = await store.CreateAsync(NewJob().WithDeadline(_time.GetUtcNow().AddMinutes(1), _time.GetUtcNow()), default);
        await store.UpdateAsync(running.JobId, j => j.Start("w", _time.GetUtcNow(), TimeSpan.FromHours(1)), default);
        var reconciler = new JobReconciler<TestJob>(store, Options, (_, _) => Task.CompletedTask, (_, _) => Task.CompletedTask, null, NullLogger.Instance);

        _time.Advance(TimeSpan.FromMinutes(2));
        await reconciler.SweepAsync(default);

        var cancelled = await store.GetAsync(queued.JobId, default);
        Assert.Equal(JobState.Cancelled, cancelled!.State);
        Assert.Contains("deadline", cancelled.Error);
        var flagged = await store.GetAsync(running.JobId, default);
        Assert.Equal(JobState.Running, flagged!.State);
        Assert.True(flagged.CancelRequested);
        Assert.Contains("deadline", flagged.CancelReason);
    }

    [Fact]
    public async Task A_final_job_awaiting_follow_up_keeps_its_marker_and_is_followed_up_until_done()
    {
        var store = await NewStoreAsync();
        var job = await store.CreateAsync(NewJob(), default);
        await store.UpdateAsync(job.JobId, j => j.Start("w", _time.GetUtcNow(), Options.LeaseDuration), default);
        await store.UpdateAsync(job.JobId, j => j.Succeed(_time.GetUtcNow()), default);
        var followUps = 0;
        var reconciler = new JobReconciler<TestJob>(store, Options, (_, _) => Task.CompletedTask, (_, _) => Task.CompletedTask,
            async (j, ct) =>
            {
                followUps++;
                if (followUps == 2)
                    await store.UpdateAsync(j.JobId, x => x with { Announced = true }, ct);
            }, NullLogger.Instance);

        _time.Advance(Options.FollowUpAfter);
        await reconciler.SweepAsync(default);
        Assert.Single(await store.ListActiveAsync(default));
        _time.Advance(Options.FollowUpAfter);
        await reconciler.SweepAsync(default);

        Assert.Equal(2, followUps);
        Assert.Empty(await store.ListActiveAsync(default));
    }

    [Fact]
    public async Task Transient_faults_are_retried_inside_the_attempt_and_the_job_stays_running_until_it_succeeds()
    {
        var store = await NewStoreAsync();
        var job = await store.CreateAsync(NewJob(), default);
        var (started, _) = await store.UpdateAsync(job.JobId, j => j.Start("w", _time.GetUtcNow(), Options.LeaseDuration), default);
        var runner = new JobAttemptRunner<TestJob>(store, Options with { TransientMaxBackoff = TimeSpan.FromMilliseconds(1) }, NullLogger.Instance);
        var calls = 0;
        var statesSeen = new List<JobState>();

        var pump = PumpTimeAsync();
        var result = await runner.RunAsync(started, "w", async (lease, _) =>
        {
            statesSeen.Add((await store.GetAsync(lease.JobId, default))!.State);
            if (++calls < 3)
                throw new RequestFailedException(503, "storage is down");
            return JobCompletion<TestJob>.Success(j => j with { Step = 42 });
        }, default);
        _pumping = false;
        await pump;

        Assert.Equal(JobRunOutcome.Ended, result.Outcome);
        Assert.Equal(JobState.Succeeded, result.Job.State);
        Assert.Equal(42, result.Job.Step);
        Assert.Equal(3, calls);
        Assert.All(statesSeen, s => Assert.Equal(JobState.Running, s));
        Assert.Equal(1, result.Job.Attempts); // retries inside one attempt, not new attempts
    }

    [Fact]
    public async Task The_jobs_own_fault_fails_it_with_a_one_line_reason_without_host_paths()
    {
        var store = await NewStoreAsync();
        var job = await store.CreateAsync(NewJob(), default);
        var (started, _) = await store.UpdateAsync(job.JobId, j => j.Start("w", _time.GetUtcNow(), Options.LeaseDuration), default);
        var runner = new JobAttemptRunner<TestJob>(store, Options, NullLogger.Instance);

        var result = await runner.RunAsync(started, "w", (_, _) =>
            throw new InvalidDataException("/tmp/ifcb-cache/training-x-1-abc/fp/diatom/bad.png is not an image\n  at Decode()"), default);

        Assert.Equal(JobState.Failed, result.Job.State);
        Assert.Equal("…/diatom/bad.png is not an image", result.Job.Error);
        Assert.Equal(AttemptOutcome.Finished, result.Job.AttemptHistory.Single().Outcome);
    }

    [Fact]
    public async Task A_worker_that_lost_its_lease_stops_without_writing_and_a_shutting_down_worker_releases_the_job()
    {
        var store = await NewStoreAsync();
        var job = await store.CreateAsync(NewJob(), default);
        var (started, _) = await store.UpdateAsync(job.JobId, j => j.Start("old", _time.GetUtcNow(), Options.LeaseDuration), default);
        var runner = new JobAttemptRunner<TestJob>(store, Options, NullLogger.Instance);

        // Another worker takes the job over (the old lease expired while the old worker was paused).
        _time.Advance(TimeSpan.FromMinutes(1));
        await store.UpdateAsync(job.JobId, j => j.Start("new", _time.GetUtcNow(), Options.LeaseDuration), default);
        var lost = await runner.RunAsync(started, "old", async (lease, token) =>
        {
            await store.UpdateAsync(lease.JobId, j => j.Heartbeat("old", _time.GetUtcNow(), Options.LeaseDuration), token);
            return JobCompletion<TestJob>.Success(j => j with { Step = 99 });
        }, default);
        Assert.Equal(JobRunOutcome.LeaseLost, lost.Outcome);
        var stored = await store.GetAsync(job.JobId, default);
        Assert.Equal("new", stored!.Worker);
        Assert.Equal(0, stored.Step);

        using var shutdown = new CancellationTokenSource();
        var released = await runner.RunAsync(stored, "new", async (_, token) =>
        {
            await shutdown.CancelAsync();
            token.ThrowIfCancellationRequested();
            return JobCompletion<TestJob>.Success();
        }, shutdown.Token);
        Assert.Equal(JobRunOutcome.Released, released.Outcome);
        Assert.Equal(JobState.Queued, released.Job.State);
        Assert.Equal(AttemptOutcome.Released, released.Job.AttemptHistory[^1].Outcome);
        Assert.Equal(1, released.Job.LostAttempts); // the takeover counted "old" as lost; the release is not a loss
    }

    [Fact]
    public async Task A_cancel_request_reaches_the_running_attempt_through_its_heartbeat()
    {
        var store = await NewStoreAsync();
        var job = await store.CreateAsync(NewJob(), default);
        var (started, _) = await store.UpdateAsync(job.JobId, j => j.Start("w", _time.GetUtcNow(), Options.LeaseDuration), default);
        var runner = new JobAttemptRunner<TestJob>(store, Options, NullLogger.Instance);

        var run = runner.RunAsync(started, "w", async (_, token) =>
        {
            await Task.Delay(Timeout.Infinite, token);
            return JobCompletion<TestJob>.Success();
        }, default);
        await store.UpdateAsync(job.JobId, j => j.RequestCancel("cancelled by alice", _time.GetUtcNow()), default);
        var pump = PumpTimeAsync();
        var result = await run.WaitAsync(TimeSpan.FromSeconds(30));
        _pumping = false;
        await pump;

        Assert.Equal(JobState.Cancelled, result.Job.State);
        Assert.Equal("cancelled by alice", result.Job.Error);
    }

    [Fact]
    public void Illegal_transitions_are_refused_with_the_state_named()
    {
        var job = NewJob();
        var done = job.Start("w", _time.GetUtcNow(), TimeSpan.FromSeconds(30)).Succeed(_time.GetUtcNow());

        Assert.Contains("is SUCCEEDED; cannot start", Assert.Throws<IfcbException>(() => done.Start("w2", _time.GetUtcNow(), TimeSpan.FromSeconds(30))).Message);
        Assert.Throws<IfcbException>(() => done.Fail("x", _time.GetUtcNow()));
        Assert.Same(done, done.RequestCancel("late", _time.GetUtcNow()));
        Assert.Throws<LeaseLostException>(() => done.Heartbeat("w", _time.GetUtcNow(), TimeSpan.FromSeconds(30)));
        Assert.Throws<IfcbException>(() => job.WithDeadline(_time.GetUtcNow().AddDays(31), _time.GetUtcNow()));
    }

    private volatile bool _pumping = true;

    /// <summary>Moves the fake clock along in small steps so heartbeats and backoff delays fire.</summary>
    private async Task PumpTimeAsync()
    {
        while (_pumping)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(5);
        }
    }
}
