using Xunit.Abstractions;

namespace Ifcb.EndToEnd.Tests;

// These tests SIGKILL a service replica. Each gets a platform of its own, so no other test meets the dead replica in
// the orchestrator's load-balancing proxy; the assembly runs collections one after another (AssemblyInfo.cs).

public sealed class TrainingWorkerFailurePlatform : PlatformFixture;

public sealed class NormStatsWorkerFailurePlatform : PlatformFixture;

[CollectionDefinition(Name)]
public sealed class TrainingWorkerFailureCollection : ICollectionFixture<TrainingWorkerFailurePlatform>
{
    public const string Name = "training-worker-failure";
}

[CollectionDefinition(Name)]
public sealed class NormStatsWorkerFailureCollection : ICollectionFixture<NormStatsWorkerFailurePlatform>
{
    public const string Name = "normstats-worker-failure";
}

[Collection(TrainingWorkerFailureCollection.Name)]
public sealed class TrainingWorkerFailureTests(TrainingWorkerFailurePlatform platform)
{
    [Fact]
    public Task A_job_whose_worker_is_killed_resumes_on_the_other_worker_without_rerunning_epochs() =>
        new TrainingTests(platform).KilledWorkerScenarioAsync();
}

[Collection(NormStatsWorkerFailureCollection.Name)]
public sealed class NormStatsWorkerFailureTests(NormStatsWorkerFailurePlatform platform, ITestOutputHelper output)
{
    [Fact]
    public async Task Killing_a_worker_mid_job_still_gives_the_exact_answer_with_every_shard_counted_once()
    {
        using var scenario = new NormStatsTests(platform, output);
        await scenario.KilledWorkerScenarioAsync();
    }
}
