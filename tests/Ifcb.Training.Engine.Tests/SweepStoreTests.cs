using Ifcb.Platform.Jobs;
using Ifcb.Testing;
using Ifcb.Training.Engine.Jobs;
using Ifcb.Training.Engine.Sweeps;

namespace Ifcb.Training.Engine.Tests;

/// <summary>One Azurite for the sweep store tests; every test uses its own container.</summary>
public sealed class SweepAzuriteFixture : IAsyncLifetime
{
    public AzuriteInstance Azurite { get; private set; } = null!;

    public async Task InitializeAsync() => Azurite = await AzuriteInstance.StartAsync();

    public async Task DisposeAsync() => await Azurite.DisposeAsync();
}

/// <summary>
/// The sweep record in blob storage: what a restarted replica finds, and the ETag-guarded claim that lets exactly one
/// of several replicas send the winner to the Registry.
/// </summary>
public sealed class SweepStoreTests(SweepAzuriteFixture fixture) : IClassFixture<SweepAzuriteFixture>
{
    private static SweepRecord NewSweep() => new()
    {
        JobId = SweepStore.NewId(),
        Base = new TrainingRequestSpec { Dataset = "sample", Architecture = "resnet18", TrainId = "sw", Pretrained = false, Seed = 3 },
        Axes = new SweepAxes { LearningRates = [1e-3, 3e-4] },
        Metric = "f1_weighted",
        Direction = "max",
        RegisterBest = "best-model",
        Trials =
        [
            new SweepTrialRecord { Index = 0, Params = [new SweepParam("lr", "0.001")], JobId = TrainingJobStore.NewId() },
            new SweepTrialRecord { Index = 1, Params = [new SweepParam("lr", "0.0003")], JobId = TrainingJobStore.NewId() },
        ],
    };

    [Fact]
    public async Task Of_replicas_that_saw_the_same_finished_sweep_exactly_one_claims_the_registration()
    {
        var container = await fixture.Azurite.CreateContainerAsync("sweeps");
        var store = new SweepStore(container);
        var sweep = await store.CreateAsync(NewSweep().Begin(DateTimeOffset.UtcNow), CancellationToken.None);
        Assert.False(await store.ClaimRegistrationAsync(sweep.JobId, null, TimeSpan.Zero, CancellationToken.None)); // still running

        var (finished, _) = await store.UpdateAsync(sweep.JobId, s => s.Finish(s.Trials[1].JobId, DateTimeOffset.UtcNow),
            CancellationToken.None);
        var replicas = Enumerable.Range(0, 6).Select(_ => new SweepStore(container)).ToList();
        var claims = await Task.WhenAll(replicas.Select(r =>
            r.ClaimRegistrationAsync(finished.JobId, finished.RegistrationSentAt, TimeSpan.FromMinutes(1), CancellationToken.None)));
        Assert.Single(claims, claimed => claimed);

        // A restarted replica reads the claim from the blob: too recent to send again, and a stale view cannot claim.
        var restarted = new SweepStore(container);
        var stored = (await restarted.GetAsync(sweep.JobId, CancellationToken.None))!;
        Assert.Equal((JobState.Succeeded, finished.Trials[1].JobId), (stored.State, stored.BestJobId));
        Assert.NotNull(stored.RegistrationSentAt);
        Assert.False(await restarted.ClaimRegistrationAsync(sweep.JobId, stored.RegistrationSentAt, TimeSpan.FromMinutes(1),
            CancellationToken.None));
        Assert.False(await restarted.ClaimRegistrationAsync(sweep.JobId, null, TimeSpan.Zero, CancellationToken.None));
        Assert.Contains(await restarted.ListActiveAsync(CancellationToken.None), a => a.JobId == sweep.JobId);

        // Once the time to resend has passed, the next claim sends again; once registered, the sweep is no longer active.
        Assert.True(await restarted.ClaimRegistrationAsync(sweep.JobId, stored.RegistrationSentAt, TimeSpan.Zero, CancellationToken.None));
        await restarted.UpdateAsync(sweep.JobId, s => s.RegistrationEnded("best-model/1", null), CancellationToken.None);
        Assert.DoesNotContain(await restarted.ListActiveAsync(CancellationToken.None), a => a.JobId == sweep.JobId);
        Assert.False(await restarted.ClaimRegistrationAsync(sweep.JobId, null, TimeSpan.Zero, CancellationToken.None));
    }
}
