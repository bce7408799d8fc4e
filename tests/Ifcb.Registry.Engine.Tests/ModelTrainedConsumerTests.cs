using Azure.Storage.Blobs;
using Ifcb.Contracts;
using Ifcb.Platform.Storage;
using MassTransit;
using MassTransit.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Ifcb.Registry.Engine.Tests;

/// <summary>
/// Auto-registration of finished training jobs, through MassTransit's in-memory harness with the real consumer, the
/// real engine and Azurite: a failure retrying cannot fix is announced (ModelRegistrationFailed) and the message is
/// consumed; a transient one is thrown for MassTransit to retry; a redelivery announces the version it already has.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class ModelTrainedConsumerTests(AzuriteFixture azurite)
{
    private sealed class Host(ServiceProvider provider, ITestHarness harness, ModelRegistry registry) : IAsyncDisposable
    {
        public ITestHarness Harness { get; } = harness;

        public ModelRegistry Registry { get; } = registry;

        /// <summary>Publishes the message and waits until the consumer has finished with it (successfully or not).</summary>
        public async Task<IReceivedMessage<ModelTrained>> DeliverAsync(ModelTrained message)
        {
            var consumer = Harness.GetConsumerHarness<ModelTrainedConsumer>();
            var before = consumer.Consumed.Select<ModelTrained>(m => m.Context.Message.JobId == message.JobId).Count();
            await Harness.Bus.Publish(message);
            for (var waited = 0; waited < 600; waited++)
            {
                var received = consumer.Consumed.Select<ModelTrained>(m => m.Context.Message.JobId == message.JobId).ToList();
                if (received.Count > before)
                {
                    return received[^1];
                }

                await Task.Delay(100);
            }

            throw new TimeoutException($"ModelTrained for {message.JobId} was not consumed within 60 s.");
        }

        public List<T> Published<T>()
            where T : class => [.. Harness.Published.Select<T>().Select(m => m.Context.Message)];

        public async ValueTask DisposeAsync()
        {
            await Harness.Stop();
            await provider.DisposeAsync();
        }
    }

    private async Task<Host> StartAsync()
    {
        var (registry, container) = await azurite.NewRegistryAsync();
        var provider = new ServiceCollection()
            .AddLogging()
            .AddSingleton(registry)
            .AddSingleton(new VersionLineage(container, registry))
            .AddSingleton(new RegistryLimits(RegistryLimits.DefaultMaxCheckpointBytes, RegistryLimits.DefaultUploadTimeout,
                RegistryLimits.DefaultUploadIdleTimeout, RegistryLimits.DefaultPendingTimeout, RegistryLimits.DefaultPendingSweepInterval))
            .AddScoped<RegistryEvents>()
            .AddMassTransitTestHarness(bus => bus.AddConsumer<ModelTrainedConsumer>())
            .BuildServiceProvider(validateScopes: true);
        var harness = provider.GetRequiredService<ITestHarness>();
        await harness.Start();
        return new Host(provider, harness, registry);
    }

    /// <summary>
    /// A training job's checkpoint where Training leaves it, and the ModelTrained that announces it with a read grant
    /// (a SAS URI, as Training sends) valid for <paramref name="grantValidity"/> (default one hour).
    /// </summary>
    private async Task<ModelTrained> TrainedAsync(string registerAs, TestCheckpoint? checkpoint = null, string? jobId = null,
        string? blobName = null, TimeSpan? grantValidity = null)
    {
        checkpoint ??= TestCheckpoint.Create();
        var container = await azurite.Azurite.CreateContainerAsync("training");
        jobId ??= "job-" + Guid.NewGuid().ToString("N")[..8];
        var blob = container.GetBlobClient($"jobs/{jobId}/best.ifcbmodel");
        await blob.UploadAsync(new BinaryData(checkpoint.Bytes));
        var granted = blobName is null ? blob : container.GetBlobClient(blobName);
        var grant = await BlobReadGrant.ForBlobAsync(granted, DateTimeOffset.UtcNow + (grantValidity ?? TimeSpan.FromHours(1)));
        return new ModelTrained(jobId, "train-1", "model-1", "resnet18", TestCheckpoint.Classes, ImgNorm.Parse("0.667 0.161"), false, 224, 7,
            "dataset", "fp", 3, new Dictionary<string, double> { ["f1_weighted"] = 0.9 }, grant, checkpoint.Sha256,
            checkpoint.Bytes.Length, registerAs);
    }

    [Fact]
    public async Task A_finished_job_is_registered_and_announced()
    {
        await using var host = await StartAsync();
        var trained = await TrainedAsync("auto");

        var delivery = await host.DeliverAsync(trained);

        Assert.Null(delivery.Exception);
        var registered = Assert.Single(host.Published<ModelVersionRegistered>());
        Assert.Equal(("auto", 1, trained.JobId), (registered.Model, registered.Version, registered.SourceTrainingJob));
        Assert.Empty(host.Published<ModelRegistrationFailed>());
    }

    [Fact]
    public async Task An_invalid_model_name_is_announced_as_ModelRegistrationFailed_and_the_message_consumed()
    {
        await using var host = await StartAsync();
        var trained = await TrainedAsync("../escape");

        var delivery = await host.DeliverAsync(trained);

        Assert.Null(delivery.Exception);
        var failed = Assert.Single(host.Published<ModelRegistrationFailed>());
        Assert.Equal((trained.JobId, "../escape"), (failed.JobId, failed.Model));
        Assert.Contains("model name", failed.Reason, StringComparison.Ordinal);
        Assert.Empty(host.Published<Fault<ModelTrained>>());
        Assert.Empty(host.Published<ModelVersionRegistered>());
    }

    [Fact]
    public async Task A_missing_checkpoint_is_announced_without_using_a_version_number()
    {
        await using var host = await StartAsync();
        var trained = await TrainedAsync("orphan", blobName: "jobs/nobody/best.ifcbmodel");

        var delivery = await host.DeliverAsync(trained);

        Assert.Null(delivery.Exception);
        var failed = Assert.Single(host.Published<ModelRegistrationFailed>());
        Assert.Contains("does not exist", failed.Reason, StringComparison.Ordinal);
        Assert.Contains(trained.JobId, failed.Reason, StringComparison.Ordinal);
        Assert.Empty((await host.Registry.SearchVersionsAsync(new VersionFilter { ModelName = "orphan" })).Items);
    }

    [Fact]
    public async Task A_lapsed_read_grant_is_announced_as_failed_and_says_so()
    {
        await using var host = await StartAsync();
        var trained = await TrainedAsync("lapsed", grantValidity: TimeSpan.FromMinutes(-1));

        var delivery = await host.DeliverAsync(trained);

        Assert.Null(delivery.Exception);
        var failed = Assert.Single(host.Published<ModelRegistrationFailed>());
        Assert.Contains("refused the read grant", failed.Reason, StringComparison.Ordinal);
        Assert.Empty((await host.Registry.SearchVersionsAsync(new VersionFilter { ModelName = "lapsed" })).Items);
    }

    [Fact]
    public async Task A_checkpoint_contradicting_the_job_is_announced_with_the_field()
    {
        await using var host = await StartAsync();
        var other = TestCheckpoint.Create(hparams: TestCheckpoint.Hparams() with { Classes = ["diatom", "ciliate"] });
        var trained = await TrainedAsync("contradicted", other);

        var delivery = await host.DeliverAsync(trained);

        Assert.Null(delivery.Exception);
        var failed = Assert.Single(host.Published<ModelRegistrationFailed>());
        Assert.Contains("classes[0]", failed.Reason, StringComparison.Ordinal);
        Assert.Contains("'diatom'", failed.Reason, StringComparison.Ordinal);
        Assert.Equal(ModelVersionStatus.Failed, (await host.Registry.GetVersionAsync("contradicted/1")).Status);
    }

    [Fact]
    public async Task A_storage_outage_is_thrown_for_MassTransit_to_retry_not_announced()
    {
        await using var host = await StartAsync();
        var granted = await TrainedAsync("outage");
        // Training's storage is unreachable: the grant points at a port nothing listens on.
        var trained = granted with { CheckpointUri = new UriBuilder(granted.CheckpointUri) { Port = 1 }.Uri };

        var delivery = await host.DeliverAsync(trained);

        Assert.NotNull(delivery.Exception);
        Assert.Empty(host.Published<ModelRegistrationFailed>());
        // Nothing is left that would block the retry: no version, no claim on the job's key.
        Assert.Empty((await host.Registry.SearchVersionsAsync(new VersionFilter { ModelName = "outage" })).Items);
    }

    [Fact]
    public async Task A_redelivered_ModelTrained_announces_the_version_it_already_registered()
    {
        await using var host = await StartAsync();
        var trained = await TrainedAsync("redelivered");
        await host.DeliverAsync(trained);
        // Training may clean up its copy once registered; a redelivery must not need it.
        var copied = new BlobUriBuilder(trained.CheckpointUri);
        await new BlobContainerClient(azurite.Azurite.ConnectionString, copied.BlobContainerName).DeleteBlobAsync(copied.BlobName);

        var again = await host.DeliverAsync(trained);

        Assert.Null(again.Exception);
        var announcements = host.Published<ModelVersionRegistered>();
        Assert.Equal(2, announcements.Count);
        Assert.All(announcements, a => Assert.Equal(("redelivered", 1, trained.JobId), (a.Model, a.Version, a.SourceTrainingJob)));
        Assert.Single((await host.Registry.SearchVersionsAsync(new VersionFilter { ModelName = "redelivered" })).Items);
        Assert.Empty(host.Published<ModelRegistrationFailed>());
    }
}
