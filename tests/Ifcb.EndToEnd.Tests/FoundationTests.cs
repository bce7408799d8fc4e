using Grpc.Health.V1;
using Ifcb.Contracts;
using Ifcb.Protos;

namespace Ifcb.EndToEnd.Tests;

[Collection(PlatformCollection.Name)]
public sealed class FoundationTests(PlatformFixture platform)
{
    [Fact]
    public async Task Every_service_answers_GetInfo_over_grpc()
    {
        var training = await new Training.TrainingClient(platform.Channel("training")).GetInfoAsync(new GetInfoRequest());
        var normStats = await new NormStats.NormStatsClient(platform.Channel("normstats")).GetInfoAsync(new GetInfoRequest());
        var registry = await new Registry.RegistryClient(platform.Channel("registry")).GetInfoAsync(new GetInfoRequest());

        Assert.Equal("training", training.Service);
        Assert.Equal("normstats", normStats.Service);
        Assert.Equal("registry", registry.Service);
        Assert.Equal(3, new[] { training.InstanceId, normStats.InstanceId, registry.InstanceId }.Distinct().Count());
        Assert.False(string.IsNullOrEmpty(training.Version));
    }

    [Fact]
    public async Task The_dashboard_buttons_compute_norm_stats_and_train_and_register_the_demo_model()
    {
        // What a click in the dashboard does: execute the resource command on one instance of the resource.
        var normStats = await platform.App.ResourceNotifications.WaitForResourceHealthyAsync("normstats");
        var norm = await platform.App.ResourceCommands.ExecuteCommandAsync(normStats.ResourceId, "norm-demo");
        Assert.True(norm.Success, norm.Message);
        var computed = await platform.Events.WaitForAsync<NormStatsComputed>(e => e.Dataset == "ifcb-sample", TimeSpan.FromSeconds(30));
        Assert.Equal(30, computed.Images);
        Assert.Equal(3, computed.ImgNorm.Mean.Count);

        var training = await platform.App.ResourceNotifications.WaitForResourceHealthyAsync("training");
        var train = await platform.App.ResourceCommands.ExecuteCommandAsync(training.ResourceId, "train-demo");
        Assert.True(train.Success, train.Message);
        var registered = await platform.Events.WaitForAsync<ModelVersionRegistered>(e => e.Model == "plankton-demo", TimeSpan.FromMinutes(4));
        Assert.False(string.IsNullOrEmpty(registered.SourceTrainingJob));
    }

    [Fact]
    public async Task Training_runs_with_the_AppHosts_malloc_environment_which_matches_NativeAllocator()
    {
        // "environment" only when every variable the AppHost set equals Ifcb.Models.NativeAllocator.EnvironmentVariables.
        var training = await new Training.TrainingClient(platform.Channel("training")).GetInfoAsync(new GetInfoRequest());
        Assert.Equal("environment", training.Details["malloc"]);
    }

    [Fact]
    public async Task Training_tells_clients_where_normstats_and_registry_are()
    {
        var info = await new Training.TrainingClient(platform.Channel("training")).GetInfoAsync(new GetInfoRequest());

        using var normStats = Grpc.Net.Client.GrpcChannel.ForAddress(info.Details["normstats_url"]);
        using var registry = Grpc.Net.Client.GrpcChannel.ForAddress(info.Details["registry_url"]);
        Assert.Equal("normstats", (await new NormStats.NormStatsClient(normStats).GetInfoAsync(new GetInfoRequest())).Service);
        Assert.Equal("registry", (await new Registry.RegistryClient(registry).GetInfoAsync(new GetInfoRequest())).Service);
    }

    [Theory]
    [InlineData("training")]
    [InlineData("normstats")]
    [InlineData("registry")]
    public async Task Grpc_health_service_reports_serving(string service)
    {
        var reply = await new Health.HealthClient(platform.Channel(service)).CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, reply.Status);
    }

    [Theory]
    [InlineData("training", "normstats", "registry")]
    [InlineData("registry", "training", "normstats")]
    [InlineData("normstats", "training", "registry")]
    public async Task A_blob_written_by_one_service_is_read_by_others_after_a_message_over_rabbitmq(string origin, string first, string second)
    {
        var diagnostics = new Diagnostics.DiagnosticsClient(platform.Channel(origin));

        var reply = await diagnostics.ProbePlumbingAsync(new ProbePlumbingRequest { Targets = { first, second }, TimeoutMs = 30_000 }, PlatformFixture.Auth);

        Assert.Equal(origin, reply.OriginService);
        Assert.Equal(64, reply.BlobSha256.Length);
        Assert.Equal(new[] { first, second }.Order(), reply.Answers.Select(a => a.Service).Order());
        Assert.All(reply.Answers, answer => Assert.Equal(reply.BlobSha256, answer.BlobSha256));
    }
}
