using System.Diagnostics;
using System.Globalization;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Grpc.Core;
using Ifcb.Client;
using Ifcb.Models;
using Ifcb.Models.Checkpoints;
using Ifcb.Protos;
using Ifcb.Testing;
using Xunit.Abstractions;

namespace Ifcb.EndToEnd.Tests;

/// <summary>
/// A platform of its own for the chaos tests: its broker and blob store keep their data in a state folder, as
/// ./run.sh's do, so restarting them loses nothing; two Training replicas; the Registry expires abandoned uploads
/// after 25 seconds instead of 15 minutes.
/// </summary>
public sealed class ChaosPlatform : PlatformFixture
{
    public string StateDirectory { get; } = Directory.CreateTempSubdirectory("ifcb-chaos-").FullName;

    protected override IEnumerable<string> AppHostArgs =>
        ["Ifcb:TrainingReplicas=2", "Ifcb:NormStatsReplicas=1", $"IFCB_STATE_DIR={StateDirectory}"];

    protected override IReadOnlyDictionary<string, string> ServiceEnvironment => new Dictionary<string, string>(base.ServiceEnvironment)
    {
        ["Ifcb__Registry__UploadIdleTimeout"] = "00:00:10",
        ["Ifcb__Registry__UploadTimeout"] = "00:00:20",
        ["Ifcb__Registry__PendingTimeout"] = "00:00:25",
        ["Ifcb__Registry__PendingSweepInterval"] = "00:00:02",
    };

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ResourceEvent> _instances = new();
    private readonly CancellationTokenSource _stopWatching = new();
    private Task? _watching;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        // The orchestrator's view of every resource instance (replicas are separate instances), kept current.
        _watching = Task.Run(async () =>
        {
            try
            {
                await foreach (var update in App.ResourceNotifications.WatchAsync(_stopWatching.Token))
                    _instances[update.ResourceId] = update;
            }
            catch (OperationCanceledException)
            {
            }
        });
        while (Instances("training").Count < 2)
            await Task.Delay(100);
    }

    /// <summary>The instances of a resource (one per replica) and their current state.</summary>
    public IReadOnlyList<ResourceEvent> Instances(string resourceName) =>
        [.. _instances.Values.Where(i => i.Resource.Name == resourceName)];

    /// <summary>
    /// Restarts a resource (all its instances) the way the dashboard's Restart button does, and waits until every
    /// instance runs a process started after the one it ran before and is healthy. (Aspire's
    /// WaitForResourceHealthyAsync is not used: it can answer from the "Exited" snapshot the restart's stop leaves
    /// behind, before the new process is reported, and then throws "failed to start" although the restart succeeds;
    /// seen once in CI on Azurite.)
    /// </summary>
    public async Task RestartAsync(string resourceName, CancellationToken cancellationToken = default)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromMinutes(2));
        // Each instance's process start before the restart: the restart is done when every instance reports a later one.
        // (Comparing with the clock when the restart was requested failed once here: the orchestrator stamped the new
        // process 20 ms before the test's own clock reading.)
        var before = Instances(resourceName).ToDictionary(i => i.ResourceId, i => i.Snapshot.StartTimeStamp);
        foreach (var instance in Instances(resourceName))
        {
            var result = await App.ResourceCommands.ExecuteCommandAsync(instance.ResourceId, "resource-restart", timeout.Token);
            Assert.True(result.Success, $"restart {instance.ResourceId}: {result.Message}");
        }
        try
        {
            while (!Instances(resourceName).All(i => StartedAfter(i, before.GetValueOrDefault(i.ResourceId)) && IsUp(i)))
                await Task.Delay(250, timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            Assert.Fail($"{resourceName} did not come back within 2 minutes of its restart: {Describe(resourceName)}");
        }
    }

    private static bool StartedAfter(ResourceEvent instance, DateTime? previous) =>
        instance.Snapshot.StartTimeStamp is { } started && (previous is not { } p || started.ToUniversalTime() > p.ToUniversalTime());

    private static bool IsUp(ResourceEvent instance) =>
        instance.Snapshot.State?.Text == KnownResourceStates.Running &&
        instance.Snapshot.HealthStatus == Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Healthy;

    /// <summary>Each instance's state, health, start time and exit code, for a failure message.</summary>
    public string Describe(string resourceName) => string.Join("; ", Instances(resourceName).Select(i =>
        $"{i.ResourceId}: {i.Snapshot.State?.Text ?? "?"}, health {i.Snapshot.HealthStatus?.ToString() ?? "unknown"}, " +
        $"started {i.Snapshot.StartTimeStamp:O}, exit code {i.Snapshot.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "none"}"));

    /// <summary>SIGKILLs the service process whose instance id (service-host-PID-suffix) is given: what the OOM killer does.</summary>
    public static void Kill(string instanceId)
    {
        var pid = int.Parse(instanceId.Split('-')[^2], CultureInfo.InvariantCulture);
        using var process = Process.GetProcessById(pid);
        process.Kill();
        process.WaitForExit(10_000);
    }

    /// <summary>Starts again every instance of a resource that is not running (after <see cref="Kill"/>), and waits until healthy.</summary>
    public async Task StartStoppedAsync(string resourceName, CancellationToken cancellationToken = default)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromMinutes(2));
        // The orchestrator notices the exit within a moment; wait for it so the start command is accepted.
        while (!Instances(resourceName).Any(i => i.Snapshot.State?.Text is "Exited" or "Finished" or "FailedToStart"))
            await Task.Delay(200, timeout.Token);
        foreach (var instance in Instances(resourceName).Where(i => i.Snapshot.State?.Text is "Exited" or "Finished" or "FailedToStart"))
        {
            var result = await App.ResourceCommands.ExecuteCommandAsync(instance.ResourceId, "resource-start", timeout.Token);
            Assert.True(result.Success, $"start {instance.ResourceId}: {result.Message}");
        }
        while (!Instances(resourceName).All(IsUp))
            await Task.Delay(250, timeout.Token);
    }

    public override async Task DisposeAsync()
    {
        await _stopWatching.CancelAsync();
        if (_watching is not null)
            await _watching;
        _stopWatching.Dispose();
        await base.DisposeAsync();
        try
        {
            Directory.Delete(StateDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

[CollectionDefinition(Name)]
public sealed class ChaosCollection : ICollectionFixture<ChaosPlatform>
{
    public const string Name = "chaos";
}

/// <summary>
/// Faults a shared lab service meets: a broker or blob store that restarts, a Registry killed mid-upload, a job that
/// kills every worker that takes it, a broker that stalls while a job is submitted. Real RabbitMQ, Azurite and
/// service processes; nothing may be lost and no job may stay stuck.
/// </summary>
[Collection(ChaosCollection.Name)]
public sealed class ChaosTests(ChaosPlatform platform, ITestOutputHelper output)
{
    private static readonly string Sample = Path.Combine(RepoPaths.Root, "testdata", "training-sample");
    private Ifcb.Protos.Training.TrainingClient Training => new(platform.Channel("training"));
    private Ifcb.Protos.Registry.RegistryClient Registry => new(platform.Channel("registry"));

    private async Task<string> UploadSampleAsync(string name)
    {
        await RetryUnavailableAsync(() => DatasetUpload.UploadFolderAsync(new Datasets.DatasetsClient(platform.Channel("training")), name, Sample,
            PlatformFixture.Auth));
        return name;
    }

    private static StartTrainingRequest Job(string dataset, string trainId, int epochs) => new()
    {
        Dataset = dataset, Model = "resnet18", TrainId = trainId, Untrain = true, Seed = 11, Resize = 32, Batch = 8,
        Emax = epochs, Emin = 1, EstopDisabled = true,
    };

    private async Task<TrainingJob> WaitAsync(string jobId, Func<TrainingJob, bool> until, TimeSpan timeout, string what)
    {
        var watch = Stopwatch.StartNew();
        TrainingJob? last = null;
        while (watch.Elapsed < timeout)
        {
            try
            {
                last = await Training.GetJobAsync(new JobRef { JobId = jobId }, deadline: DateTime.UtcNow.AddSeconds(10));
                if (until(last))
                    return last;
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
            {
                // A restarting dependency or a killed replica in the proxy's rotation.
            }
            await Task.Delay(500);
        }
        throw new TimeoutException($"Waiting for {what}: job {jobId} is {last?.State} (epoch {last?.Epoch}, attempts {last?.Attempts}, error '{last?.Error}') after {timeout}.");
    }

    private static async Task<T> RetryUnavailableAsync<T>(Func<Task<T>> call)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await call();
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable && attempt < 30)
            {
                await Task.Delay(1000);
            }
        }
    }

    [Fact]
    public async Task A_broker_restarted_mid_training_loses_nothing_the_job_finishes_in_one_attempt_and_is_registered()
    {
        var dataset = await UploadSampleAsync("chaos-broker");
        var request = Job(dataset, "chaos-broker", epochs: 8);
        request.RegisterAs = "chaos-broker-model";
        var job = await Training.StartTrainingAsync(request, PlatformFixture.Auth);
        await WaitAsync(job.JobId, j => j.State == JobState.Running && j.Epochs.Count >= 1, TimeSpan.FromMinutes(3), "the first epoch");

        var restart = Stopwatch.StartNew();
        await platform.RestartAsync("rabbitmq");
        output.WriteLine($"broker restarted in {restart.Elapsed.TotalSeconds:0.0} s");

        var done = await WaitAsync(job.JobId, j => j.State is JobState.Succeeded or JobState.Failed or JobState.Cancelled, TimeSpan.FromMinutes(4), "the end");
        Assert.True(done.State == JobState.Succeeded, $"job ended {done.State}: {done.Error}");
        Assert.Equal(1, done.Attempts); // the lease, not the broker connection, said the job was alive
        Assert.Equal(Enumerable.Range(0, 8), done.Epochs.Select(e => e.Epoch));
        // ModelTrained may have been sent while the broker was down; the follow-up sends it until the Registry answers.
        var registered = await WaitAsync(job.JobId, j => j.RegisteredVersion.Length > 0, TimeSpan.FromMinutes(2), "the registration");
        var version = await Registry.GetVersionAsync(new VersionRef { Name = "chaos-broker-model", Version = int.Parse(registered.RegisteredVersion.Split('/')[1], CultureInfo.InvariantCulture) });
        Assert.Equal(VersionStatus.Ready, version.Status);
    }

    [Fact]
    public async Task Blob_storage_restarted_mid_job_the_job_rides_it_out_and_every_artifact_is_whole()
    {
        var dataset = await UploadSampleAsync("chaos-blobs");
        var job = await Training.StartTrainingAsync(Job(dataset, "chaos-blobs", epochs: 8), PlatformFixture.Auth);
        await WaitAsync(job.JobId, j => j.State == JobState.Running && j.Epochs.Count >= 1, TimeSpan.FromMinutes(3), "the first epoch");

        await platform.RestartAsync("azurite");

        var done = await WaitAsync(job.JobId, j => j.State is JobState.Succeeded or JobState.Failed or JobState.Cancelled, TimeSpan.FromMinutes(4), "the end");
        Assert.True(done.State == JobState.Succeeded, $"job ended {done.State}: {done.Error}");
        Assert.Equal(Enumerable.Range(0, 8), done.Epochs.Select(e => e.Epoch));
        // Nothing corrupt: the checkpoint downloads, matches the hash the job recorded, and loads.
        var checkpoint = new MemoryStream();
        using (var call = Training.DownloadArtifact(new DownloadArtifactRequest { JobId = job.JobId, Name = "chaos-blobs.ifcbmodel" }))
            await ChunkedDownload.CopyToAsync(call.ResponseStream, checkpoint, c => (c.Data.Memory, c.TotalSize, c.Sha256));
        checkpoint.Position = 0;
        using var loaded = Checkpoint.Load(checkpoint).Model;
        Assert.Equal(2, loaded.NumClasses);
    }

    [Fact]
    public async Task A_registry_killed_mid_upload_then_a_retry_with_the_same_key_reaches_READY()
    {
        var name = $"chaos-ci-{Guid.NewGuid().ToString("N")[..6]}";
        var bytes = SaveCheckpoint();
        var header = new RegisterVersionHeader
        {
            Name = name, IdempotencyKey = "ci:pipeline-77",
            Sha256 = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)), Size = bytes.LongLength,
            Metadata = new VersionMetadata { Arch = "squeezenet1_0", Classes = { "diatom", "dinoflagellate" }, Resize = 32 },
        };
        await Registry.CreateModelAsync(new CreateModelRequest { Name = name }, PlatformFixture.Auth);
        var registry = await Registry.GetInfoAsync(new GetInfoRequest());

        // The upload stalls after its first chunk; the Registry dies while it holds a PENDING version.
        var stalled = new StallingStream(bytes, stallAfter: RegistryUpload.ChunkSize);
        using var client = new CancellationTokenSource();
        var upload = RegistryUpload.RegisterCheckpointAsync(Registry, header, stalled, PlatformFixture.Auth, cancellationToken: client.Token);
        await stalled.Stalled.WaitAsync(TimeSpan.FromSeconds(30));
        // Kill once the Registry holds the version PENDING and waits for the rest of the bytes.
        var pending = Stopwatch.StartNew();
        while ((await Registry.SearchVersionsAsync(new SearchVersionsRequest { Name = name })).Versions.SingleOrDefault()?.Status != VersionStatus.Pending)
        {
            Assert.True(pending.Elapsed < TimeSpan.FromSeconds(30), "the upload never reached a PENDING version");
            await Task.Delay(100);
        }
        ChaosPlatform.Kill(registry.InstanceId);
        await client.CancelAsync(); // the stalled client gives up too
        await Assert.ThrowsAnyAsync<Exception>(() => upload);
        await platform.StartStoppedAsync("registry");

        // The CI pipeline retries with the same key: the abandoned PENDING version expires and the retry registers.
        var version = await RetryAsync(() => RegistryUpload.RegisterCheckpointAsync(Registry, header, new MemoryStream(bytes), PlatformFixture.Auth),
            TimeSpan.FromSeconds(120));
        Assert.Equal(VersionStatus.Ready, version.Status);
        var versions = await Registry.SearchVersionsAsync(new SearchVersionsRequest { Name = name });
        Assert.Equal(VersionStatus.Failed, Assert.Single(versions.Versions, v => v.Version != version.Version).Status); // the abandoned one
        // And the key now answers with that version.
        var again = await RegistryUpload.RegisterCheckpointAsync(Registry, header, new MemoryStream(bytes), PlatformFixture.Auth);
        Assert.Equal(version.Version, again.Version);
    }

    [Fact]
    public async Task A_job_that_kills_every_worker_that_takes_it_fails_after_three_attempts_and_the_workers_keep_serving()
    {
        var dataset = await UploadSampleAsync("chaos-poison");
        var job = await Training.StartTrainingAsync(Job(dataset, "chaos-poison", epochs: 30), PlatformFixture.Auth);

        var killed = new List<string>();
        for (var attempt = 1; attempt <= 3; attempt++)
        {
            var running = await WaitAsync(job.JobId, j => j.State == JobState.Running && j.Attempts == attempt, TimeSpan.FromMinutes(3), $"attempt {attempt}");
            killed.Add(running.Worker);
            ChaosPlatform.Kill(running.Worker); // what an out-of-memory kill does to the worker that took the job
            await platform.StartStoppedAsync("training");
        }

        var failed = await WaitAsync(job.JobId, j => j.State is JobState.Failed or JobState.Succeeded or JobState.Cancelled, TimeSpan.FromMinutes(2), "the failure");
        Assert.Equal(JobState.Failed, failed.State);
        Assert.Contains("stopped its worker 3 times", failed.Error);
        foreach (var worker in killed.Distinct())
            Assert.Contains(worker, failed.Error);
        Assert.Equal(3, failed.AttemptHistory.Count(a => a.Outcome == "worker_lost"));
        Assert.DoesNotContain("/", failed.Error.Replace("n/a", "", StringComparison.Ordinal)); // no host paths, no stack

        // The workers are alive and serve the next job.
        var next = await Training.StartTrainingAsync(Job(dataset, "chaos-after-poison", epochs: 1), PlatformFixture.Auth);
        var ok = await WaitAsync(next.JobId, j => j.State is JobState.Succeeded or JobState.Failed, TimeSpan.FromMinutes(3), "the next job");
        Assert.Equal(JobState.Succeeded, ok.State);
    }

    [Fact]
    public async Task A_job_submitted_while_the_broker_is_stalled_is_accepted_at_once_and_still_runs()
    {
        var dataset = await UploadSampleAsync("chaos-paused");
        var broker = BrokerProcess();
        Signal(broker, "STOP");
        TrainingJob job;
        var submit = Stopwatch.StartNew();
        try
        {
            job = await Training.StartTrainingAsync(Job(dataset, "chaos-paused", epochs: 1), PlatformFixture.Auth, deadline: DateTime.UtcNow.AddSeconds(30));
            submit.Stop();
        }
        finally
        {
            await Task.Delay(TimeSpan.FromSeconds(3));
            Signal(broker, "CONT");
        }
        Assert.Equal(JobState.Queued, job.State);
        Assert.True(submit.Elapsed < TimeSpan.FromSeconds(15), $"submission took {submit.Elapsed.TotalSeconds:0.0} s");

        var done = await WaitAsync(job.JobId, j => j.State is JobState.Succeeded or JobState.Failed or JobState.Cancelled, TimeSpan.FromMinutes(3), "the end");
        Assert.True(done.State == JobState.Succeeded, $"job ended {done.State}: {done.Error}");
    }

    /// <summary>The PID of this platform's RabbitMQ node (beam.smp started with its private epmd port).</summary>
    private int BrokerProcess()
    {
        var epmd = platform.App.GetEndpoint("rabbitmq", "epmd").Port;
        var pgrep = Process.Start(new ProcessStartInfo("pgrep", ["-f", $"beam.smp.*-epmd_port {epmd} "]) { RedirectStandardOutput = true })!;
        var pids = pgrep.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        pgrep.WaitForExit();
        return int.Parse(Assert.Single(pids), CultureInfo.InvariantCulture);
    }

    private static void Signal(int pid, string signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", pid.ToString(CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }

    private static async Task<T> RetryAsync<T>(Func<Task<T>> call, TimeSpan within)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await call();
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.Aborted && watch.Elapsed < within)
            {
                await Task.Delay(1000);
            }
        }
    }

    private static byte[] SaveCheckpoint()
    {
        using var model = ModelZoo.Create("squeezenet1_0", 2, false);
        var hparams = new ModelHparams("squeezenet1_0", ["diatom", "dinoflagellate"], 32, null, false, 1, "chaos", "chaos", null,
            DateTimeOffset.UtcNow, "e2e");
        using var stream = new MemoryStream();
        Checkpoint.Save(stream, hparams, model);
        return stream.ToArray();
    }

    /// <summary>A checkpoint stream that stops (forever) after <paramref name="stallAfter"/> bytes: a client whose network died.</summary>
    private sealed class StallingStream(byte[] bytes, int stallAfter) : MemoryStream(bytes, writable: false)
    {
        private readonly TaskCompletionSource _stalled = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Stalled => _stalled.Task;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (Position >= stallAfter)
            {
                _stalled.TrySetResult();
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            return await base.ReadAsync(buffer[..(int)Math.Min(buffer.Length, stallAfter - Position)], cancellationToken);
        }
    }
}
