using System.Diagnostics;
using Grpc.Core;
using Ifcb.Client;
using Ifcb.Contracts;
using Ifcb.Protos;
using Ifcb.Testing;

namespace Ifcb.EndToEnd.Tests;

/// <summary>
/// Sweeps on the platform (two Training replicas): a 2×2 grid trained as four ordinary jobs on both workers at once,
/// one shared img_norm=auto computation, a complete leaderboard, only the winner registered; and a cancelled sweep.
/// </summary>
[Collection(PlatformCollection.Name)]
public sealed class SweepTests(PlatformFixture platform)
{
    private static readonly string Sample = Path.Combine(RepoPaths.Root, "testdata", "training-sample");
    private Sweeps.SweepsClient Sweeps => new(platform.Channel("training"));
    private Ifcb.Protos.Training.TrainingClient Training => new(platform.Channel("training"));
    private Registry.RegistryClient Registry => new(platform.Channel("registry"));

    /// <summary>
    /// The sample less one image, so that its fingerprint is its own: NormStats caches by content, and this test counts
    /// the computations it starts.
    /// </summary>
    private async Task UploadOwnSampleAsync(string name)
    {
        var folder = Path.Combine(Path.GetTempPath(), $"ifcb-{name}-{Guid.NewGuid():N}");
        try
        {
            foreach (var file in Directory.EnumerateFiles(Sample, "*.png", SearchOption.AllDirectories))
            {
                var target = Path.Combine(folder, Path.GetRelativePath(Sample, file));
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(file, target);
            }
            File.Delete(Directory.EnumerateFiles(Path.Combine(folder, "Strombidium-like")).Order(StringComparer.Ordinal).First());
            await DatasetUpload.UploadFolderAsync(new Datasets.DatasetsClient(platform.Channel("training")), name, folder, PlatformFixture.Auth);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static StartSweepRequest TwoByTwo(string dataset, string trainId) => new()
    {
        Base = new StartTrainingRequest
        {
            Dataset = dataset, Model = "resnet18", TrainId = trainId, Untrain = true, Seed = 7, Resize = 32, Batch = 8, Emax = 2, Emin = 1,
        },
        Lr = { 1e-3, 3e-4 },
        ClassWeights = { "none", "balanced" },
    };

    private async Task<Sweep> WaitAsync(string sweepId, Func<Sweep, bool> until, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var sweep = await Sweeps.GetSweepAsync(new SweepRef { SweepId = sweepId });
            if (until(sweep))
                return sweep;
            if (watch.Elapsed > timeout)
                throw new TimeoutException($"Sweep {sweepId} is {sweep.State} ({sweep.TrialsEnded}/{sweep.Trials} trials ended) after {timeout}.");
            await Task.Delay(300);
        }
    }

    [Fact]
    public async Task A_two_by_two_sweep_runs_on_both_replicas_ranks_every_trial_and_registers_only_the_best()
    {
        await UploadOwnSampleAsync("sample-sweep");
        var request = TwoByTwo("sample-sweep", "e2e-sweep");
        request.Base.ImgNorm = "auto";
        request.RegisterBest = "e2e-sweep-best";

        var started = await Sweeps.StartSweepAsync(request, PlatformFixture.Auth);
        Assert.Equal((JobState.Running, 4, "f1_weighted", "max"), (started.State, started.Trials, started.Metric, started.Direction));
        Assert.Equal(7, started.Request.Base.Seed);
        Assert.All(started.Leaderboard, t => Assert.Equal(32, t.JobId.Length));

        var updates = new List<Sweep>();
        using (var watch = Sweeps.WatchSweep(new SweepRef { SweepId = started.SweepId }, deadline: DateTime.UtcNow.AddMinutes(8)))
        {
            await foreach (var update in watch.ResponseStream.ReadAllAsync())
                updates.Add(update);
        }
        var done = updates[^1];
        Assert.True(done.State == JobState.Succeeded, $"sweep ended {done.State}: {string.Join("; ", done.Leaderboard.Select(t => t.Error))}");
        Assert.Contains(updates, u => u.Leaderboard.Any(t => t.State == JobState.Running));

        // A complete leaderboard: every trial succeeded with a metric, ranked best first (ties by index).
        Assert.Equal(4, done.TrialsEnded);
        Assert.Equal([1, 2, 3, 4], done.Leaderboard.Select(t => t.Rank));
        Assert.All(done.Leaderboard, t => Assert.True(t.State == JobState.Succeeded && t.HasMetric && t.BestEpoch >= 0, t.ToString()));
        Assert.Equal(["lr=0.001 class_weights=none", "lr=0.001 class_weights=balanced", "lr=0.0003 class_weights=none",
            "lr=0.0003 class_weights=balanced"], done.Leaderboard.OrderBy(t => t.Index).Select(t => $"lr={t.Params["lr"]} class_weights={t.Params["class_weights"]}"));
        foreach (var (better, worse) in done.Leaderboard.Zip(done.Leaderboard.Skip(1)))
            Assert.True(better.Metric > worse.Metric || (better.Metric == worse.Metric && better.Index < worse.Index), done.ToString());

        // Both replicas trained at once: two trials' attempts on different workers overlap in time.
        var jobs = await Task.WhenAll(done.Leaderboard.Select(t => Training.GetJobAsync(new JobRef { JobId = t.JobId }).ResponseAsync));
        var attempts = jobs.SelectMany(j => j.AttemptHistory).Select(a => (a.Worker, Start: DateTimeOffset.Parse(a.StartedAt,
            System.Globalization.CultureInfo.InvariantCulture), End: DateTimeOffset.Parse(a.EndedAt, System.Globalization.CultureInfo.InvariantCulture))).ToList();
        Assert.Equal(2, attempts.Select(a => a.Worker).Distinct().Count());
        Assert.Contains(attempts, a => attempts.Any(b => b.Worker != a.Worker && b.Start < a.End && a.Start < b.End));
        Assert.All(jobs, j => Assert.Equal(7, j.Seed));
        // A sweep is background work: its trials queue at low priority unless the request says otherwise.
        Assert.All(jobs, j => Assert.Equal("low", j.Priority));
        Assert.Equal("low", done.Request.Base.Priority);

        // One img_norm=auto computation for the sweep (all four trials have 32×32 inputs), used by every trial.
        var computed = platform.Events.All<NormStatsComputed>().Where(e => e.Dataset == "sample-sweep").ToList();
        Assert.Single(computed);
        Assert.All(jobs, j => Assert.Equal(computed[0].ImgNorm.Mean, j.ImgNorm.Mean));

        // Only the winner was sent to the Registry and registered: one version, whose source is the best trial.
        Assert.Equal(done.Leaderboard[0].JobId, done.BestJobId);
        Assert.Equal("e2e-sweep-best/1", done.RegisteredVersion);
        var versions = (await Registry.SearchVersionsAsync(new SearchVersionsRequest { Name = "e2e-sweep-best" })).Versions;
        var version = Assert.Single(versions);
        Assert.Equal(done.BestJobId, version.Metadata.SourceTrainingJob);
        var trialIds = jobs.Select(j => j.JobId).ToHashSet();
        Assert.Equal([done.BestJobId], platform.Events.All<ModelTrained>().Where(m => trialIds.Contains(m.JobId)).Select(m => m.JobId).Distinct());
        Assert.All(jobs.Where(j => j.JobId != done.BestJobId), j => Assert.Equal("", j.RegisteredVersion));
        Assert.Equal("e2e-sweep-best/1", (await Training.GetJobAsync(new JobRef { JobId = done.BestJobId })).RegisteredVersion);
    }

    [Fact]
    public async Task A_sweep_cancelled_midway_ends_with_every_trial_cancelled_and_registers_nothing()
    {
        await UploadOwnSampleAsync("sample-sweep-cancel");
        var request = TwoByTwo("sample-sweep-cancel", "e2e-sweep-cancel");
        request.Base.Emax = 500;
        request.Base.Emin = 500;
        request.RegisterBest = "e2e-sweep-cancelled";
        var started = await Sweeps.StartSweepAsync(request, PlatformFixture.Auth);

        await WaitAsync(started.SweepId, s => s.Leaderboard.Any(t => t.State == JobState.Running && t.Epochs >= 1), TimeSpan.FromMinutes(3));
        var cancelling = await Sweeps.CancelSweepAsync(new SweepRef { SweepId = started.SweepId }, PlatformFixture.Auth);
        Assert.Equal("cancelled by a user", cancelling.CancelReason);

        var done = await WaitAsync(started.SweepId, s => s.State != JobState.Running, TimeSpan.FromMinutes(2));
        Assert.Equal(JobState.Cancelled, done.State);
        Assert.All(done.Leaderboard, t => Assert.Equal(JobState.Cancelled, t.State));
        Assert.All(done.Leaderboard, t => Assert.Equal(0, t.Rank));
        Assert.Equal(("", ""), (done.BestJobId, done.RegisteredVersion));
        var missing = await Assert.ThrowsAsync<RpcException>(() => Registry.GetModelAsync(new GetModelRequest { Name = "e2e-sweep-cancelled" }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        // Cancelling again returns the ended sweep unchanged.
        Assert.Equal(JobState.Cancelled, (await Sweeps.CancelSweepAsync(new SweepRef { SweepId = started.SweepId }, PlatformFixture.Auth)).State);
    }

    [Fact]
    public async Task A_bad_axis_value_fails_the_sweep_naming_the_axis_and_stores_nothing()
    {
        var before = (await Sweeps.ListSweepsAsync(new ListSweepsRequest { PageSize = 100 })).Sweeps.Count;
        var request = TwoByTwo("sample-sweep-bad", "e2e-sweep-bad");
        request.Lr.Add(20);
        var error = await Assert.ThrowsAsync<RpcException>(() => Sweeps.StartSweepAsync(request, PlatformFixture.Auth).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.StartsWith("lr '20'", error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(before, (await Sweeps.ListSweepsAsync(new ListSweepsRequest { PageSize = 100 })).Sweeps.Count);
    }
}
