using System.Text.Json;
using Ifcb.Platform.Jobs;
using Ifcb.Testing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ifcb.Services.Tests;

/// <summary>A job kind for the executor's tests.</summary>
public sealed record ExecutorJob : JobRecord<ExecutorJob>
{
    public override string DescribeProgress() => "";
}

/// <summary>
/// <see cref="JobExecutor"/>'s slot rule, on which job priorities rest: a delivery that finds every slot busy is handed
/// back with its job (so its priority) — also when a slot frees while it waits, so the broker, not the delivery that
/// happened to be waiting, decides which queued job takes the slot.
/// </summary>
public sealed class JobExecutorTests : IAsyncLifetime
{
    private static readonly JobKernelOptions Options = new() { SlotWait = TimeSpan.FromMilliseconds(400) };
    private AzuriteInstance _azurite = null!;
    private JobStore<ExecutorJob> _store = null!;
    private readonly JobExecutor _executor = new(new ServiceIdentity("test"), Options, slots: 1, TimeProvider.System,
        NullLogger<JobExecutor>.Instance);

    public async Task InitializeAsync()
    {
        _azurite = await AzuriteInstance.StartAsync();
        _store = new JobStore<ExecutorJob>(await _azurite.CreateContainerAsync("jobs"), "jobs/",
            new JsonSerializerOptions(JsonSerializerDefaults.Web));
    }

    public async Task DisposeAsync()
    {
        _executor.Dispose();
        await _azurite.DisposeAsync();
    }

    private async Task<ExecutorJob> NewJobAsync(JobPriority priority) =>
        await _store.CreateAsync(new ExecutorJob { JobId = JobStore<ExecutorJob>.NewId(), Priority = priority }, CancellationToken.None);

    private Task<JobDelivery> DeliverAsync(ExecutorJob job, List<ExecutorJob> handedBack, Func<ExecutorJob, CancellationToken, Task> run) =>
        _executor.AcceptAsync(_store, job.JobId, (j, _) =>
        {
            lock (handedBack)
                handedBack.Add(j);
            return Task.CompletedTask;
        }, run, (_, _) => Task.CompletedTask, CancellationToken.None);

    [Fact]
    public async Task A_free_slot_starts_the_job_at_once()
    {
        var job = await NewJobAsync(JobPriority.Normal);
        var ran = new TaskCompletionSource();
        var handedBack = new List<ExecutorJob>();

        Assert.Equal(JobDelivery.Started, await DeliverAsync(job, handedBack, (_, _) => { ran.SetResult(); return Task.CompletedTask; }));
        await ran.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Empty(handedBack);
    }

    [Fact]
    public async Task A_delivery_to_a_full_worker_is_handed_back_with_its_priority_even_if_a_slot_frees_while_it_waits()
    {
        var release = new TaskCompletionSource();
        var busy = await NewJobAsync(JobPriority.Normal);
        var handedBack = new List<ExecutorJob>();
        Assert.Equal(JobDelivery.Started, await DeliverAsync(busy, handedBack, (_, _) => release.Task));

        // Full for the whole wait: handed back after SlotWait.
        var low = await NewJobAsync(JobPriority.Low);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(JobDelivery.HandedBack, await DeliverAsync(low, handedBack, (_, _) => Task.CompletedTask));
        Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(350), TimeSpan.FromSeconds(5));

        // The slot frees during the wait: still handed back, and promptly.
        var high = await NewJobAsync(JobPriority.High);
        var delivery = DeliverAsync(high, handedBack, (_, _) => Task.CompletedTask);
        await Task.Delay(100);
        watch.Restart();
        release.SetResult();
        Assert.Equal(JobDelivery.HandedBack, await delivery);
        Assert.True(watch.Elapsed < TimeSpan.FromMilliseconds(300), $"handed back after {watch.ElapsedMilliseconds} ms");

        Assert.Equal([(low.JobId, JobPriority.Low), (high.JobId, JobPriority.High)], handedBack.Select(j => (j.JobId, j.Priority)));
        Assert.Equal(JobState.Queued, (await _store.GetAsync(high.JobId, CancellationToken.None))!.State);

        // The slot is free again: the next delivery starts.
        Assert.Equal(JobDelivery.Started, await DeliverAsync(high, handedBack, (_, _) => Task.CompletedTask));
    }
}
