using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.ClientFactory;
using Ifcb.Protos;
using Ifcb.Registry;
using Ifcb.Testing;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using RegistryCheckpoints = Ifcb.Training.RegistryCheckpoints;
using RegistryClient = Ifcb.Protos.Registry.RegistryClient;

namespace Ifcb.Services.Tests;

/// <summary>
/// Named keys and roles as a client meets them: the real Registry gRPC service in an in-process server, its engine over
/// Azurite, the service holding only the bootstrap key's SHA-256. Keys are created and revoked through the RPCs.
/// </summary>
public sealed class ApiKeyRoleTests(ApiKeyRoleTests.AzuriteFixture azurite) : IClassFixture<ApiKeyRoleTests.AzuriteFixture>, IAsyncLifetime
{
    private const string Bootstrap = "in-process-bootstrap-key-0123456789abcdef";
    private InProcessGrpcHost _host = null!;

    /// <summary>One Azurite for the class; each test gets its own container and server.</summary>
    public sealed class AzuriteFixture : IAsyncLifetime
    {
        public AzuriteInstance Azurite { get; private set; } = null!;

        public async Task InitializeAsync() => Azurite = await AzuriteInstance.StartAsync();

        public async Task DisposeAsync() => await Azurite.DisposeAsync();
    }

    private static Metadata With(string key) => new() { { ApiKeyInterceptor.HeaderName, key } };

    private RegistryClient Registry => new(_host.Channel);

    public async Task InitializeAsync() => _host = await StartRegistryAsync(requireKeyForReads: false);

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private async Task<InProcessGrpcHost> StartRegistryAsync(bool requireKeyForReads)
    {
        var container = await azurite.Azurite.CreateContainerAsync("registry");
        var configuration = new Dictionary<string, string?>
        {
            [ApiKeyVerifier.Sha256ConfigurationKey] = ApiKeyVerifier.Sha256Hex(Bootstrap),
            [RegistryServiceExtensions.RequireKeyForReadsKey] = requireKeyForReads ? "true" : "false",
        };
        return await InProcessGrpcHost.StartAsync([typeof(RegistryGrpcService)], configuration, (services, settings) =>
        {
            services.AddSingleton(new ServiceIdentity("registry"));
            services.AddRegistryEngine(settings, _ => container);
            services.AddScoped<RegistryEvents>();
            services.AddMassTransit(bus => bus.UsingInMemory());
        });
    }

    private async Task<string> CreateKeyAsync(string name, string role, string? adminKey = null) =>
        (await Registry.CreateApiKeyAsync(new CreateApiKeyRequest { Name = name, Role = role }, With(adminKey ?? Bootstrap))).Key;

    private static async Task<RpcException> RefusedAsync<T>(Func<Task<T>> call) => await Assert.ThrowsAsync<RpcException>(call);

    [Fact]
    public async Task A_reader_key_reads_but_a_write_with_it_is_PermissionDenied_naming_both_roles()
    {
        await Registry.CreateModelAsync(new CreateModelRequest { Name = "plankton" }, With(Bootstrap));
        var reader = await CreateKeyAsync("dashboard", "reader");

        var model = await Registry.GetModelAsync(new GetModelRequest { Name = "plankton" }, With(reader));
        var refused = await RefusedAsync(async () =>
            await Registry.CreateModelAsync(new CreateModelRequest { Name = "by-reader" }, With(reader)));

        Assert.Equal("plankton", model.Name);
        Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);
        Assert.Contains("needs a writer key or better", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("'key:dashboard' is a reader key", refused.Status.Detail, StringComparison.Ordinal);
        var absent = await RefusedAsync(async () => await Registry.GetModelAsync(new GetModelRequest { Name = "by-reader" }));
        Assert.Equal(StatusCode.NotFound, absent.StatusCode);
    }

    [Fact]
    public async Task A_writer_key_writes_under_its_name_in_the_audit_log_but_cannot_manage_keys_or_webhooks()
    {
        var writer = await CreateKeyAsync("ci-bot", "writer");

        var created = await Registry.CreateModelAsync(new CreateModelRequest { Name = "written" }, With(writer));
        var tagged = await Registry.SetModelTagAsync(new SetTagRequest { Name = "written", Key = "stage", Value = "dev" }, With(writer));
        var history = await Registry.GetHistoryAsync(new GetHistoryRequest { Name = "written" });

        Assert.Equal(("key:ci-bot", "key:ci-bot"), (created.CreatedBy, tagged.UpdatedBy));
        Assert.Equal(["key:ci-bot", "key:ci-bot"], history.Entries.Select(e => e.Actor));
        var create = await RefusedAsync(async () =>
            await Registry.CreateApiKeyAsync(new CreateApiKeyRequest { Name = "escalated", Role = "admin" }, With(writer)));
        var list = await RefusedAsync(async () => await Registry.ListApiKeysAsync(new ListApiKeysRequest(), With(writer)));
        var revoke = await RefusedAsync(async () => await Registry.RevokeApiKeyAsync(new RevokeApiKeyRequest { Name = "ci-bot" }, With(writer)));
        var hook = await RefusedAsync(async () => await Registry.CreateWebhookAsync(
            new CreateWebhookRequest { Url = "http://127.0.0.1:9/hook", Secret = "0123456789abcdef" }, With(writer)));
        var hooks = await RefusedAsync(async () => await Registry.ListWebhooksAsync(new ListWebhooksRequest(), With(writer)));
        foreach (var refused in new[] { create, list, revoke, hook, hooks })
        {
            Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);
            Assert.Contains("needs an admin key; 'key:ci-bot' is a writer key", refused.Status.Detail, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_revoked_key_is_refused_by_the_very_next_call_saying_it_was_revoked()
    {
        var writer = await CreateKeyAsync("leaky", "writer");
        await Registry.CreateModelAsync(new CreateModelRequest { Name = "before-revoke" }, With(writer));

        var revoked = await Registry.RevokeApiKeyAsync(new RevokeApiKeyRequest { Name = "leaky" }, With(Bootstrap));
        var refused = await RefusedAsync(async () =>
            await Registry.CreateModelAsync(new CreateModelRequest { Name = "after-revoke" }, With(writer)));

        Assert.Equal("bootstrap", revoked.RevokedBy);
        Assert.NotEmpty(revoked.RevokedAt);
        Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);
        Assert.Contains("'leaky' was revoked", refused.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_key_is_Unauthenticated_and_an_unknown_key_PermissionDenied()
    {
        var real = await CreateKeyAsync("real", "admin");
        var forged = "ifcb_real_" + new string('A', 43);

        var anonymous = await RefusedAsync(async () => await Registry.CreateModelAsync(new CreateModelRequest { Name = "x" }));
        var unknown = await RefusedAsync(async () => await Registry.CreateModelAsync(new CreateModelRequest { Name = "x" }, With(forged)));
        var adminAnonymous = await RefusedAsync(async () => await Registry.ListApiKeysAsync(new ListApiKeysRequest()));

        Assert.Equal(StatusCode.Unauthenticated, anonymous.StatusCode);
        Assert.Equal(StatusCode.PermissionDenied, unknown.StatusCode);
        Assert.DoesNotContain("revoked", unknown.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.Unauthenticated, adminAnonymous.StatusCode);
        Assert.Contains("needs an admin key", adminAnonymous.Status.Detail, StringComparison.Ordinal);
        Assert.NotEqual(forged, real);
    }

    [Fact]
    public async Task The_bootstrap_key_and_named_admin_keys_manage_keys_and_the_list_never_shows_a_key()
    {
        var ops = await CreateKeyAsync("ops", "admin");
        var reader = await CreateKeyAsync("viewer", "reader", adminKey: ops);
        var created = await Registry.CreateModelAsync(new CreateModelRequest { Name = "by-bootstrap" }, With(Bootstrap));
        var invalidRole = await RefusedAsync(async () =>
            await Registry.CreateApiKeyAsync(new CreateApiKeyRequest { Name = "bad-role", Role = "owner" }, With(ops)));
        var duplicate = await RefusedAsync(async () =>
            await Registry.CreateApiKeyAsync(new CreateApiKeyRequest { Name = "viewer", Role = "reader" }, With(ops)));

        var listed = await Registry.ListApiKeysAsync(new ListApiKeysRequest(), With(ops));

        Assert.Equal("bootstrap", created.CreatedBy);
        Assert.Equal(StatusCode.InvalidArgument, invalidRole.StatusCode);
        Assert.Contains("reader, writer, admin", invalidRole.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.AlreadyExists, duplicate.StatusCode);
        Assert.Equal([("ops", "admin", "bootstrap"), ("viewer", "reader", "key:ops")],
            listed.Keys.Select(k => (k.Name, k.Role, k.CreatedBy)));
        var json = listed.ToString();
        Assert.DoesNotContain(ops[^43..], json, StringComparison.Ordinal);
        Assert.DoesNotContain(reader[^43..], json, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reads_need_a_key_of_any_role_only_when_the_registry_requires_it_and_health_stays_open()
    {
        var openRead = await Registry.ListModelsAsync(new ListModelsRequest());
        Assert.NotNull(openRead);
        await using var locked = await StartRegistryAsync(requireKeyForReads: true);
        var registry = new RegistryClient(locked.Channel);
        var reader = (await registry.CreateApiKeyAsync(new CreateApiKeyRequest { Name = "reader", Role = "reader" }, With(Bootstrap))).Key;

        var anonymous = await RefusedAsync(async () => await registry.ListModelsAsync(new ListModelsRequest()));
        var forged = await RefusedAsync(async () =>
            await registry.ListModelsAsync(new ListModelsRequest(), With("ifcb_reader_" + new string('B', 43))));
        var withReader = await registry.ListModelsAsync(new ListModelsRequest(), With(reader));
        var withBootstrap = await registry.GetInfoAsync(new GetInfoRequest(), With(Bootstrap));
        var health = await new Health.HealthClient(locked.Channel).CheckAsync(new HealthCheckRequest());

        Assert.Equal(StatusCode.Unauthenticated, anonymous.StatusCode);
        Assert.Contains("RequireKeyForReads", anonymous.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.PermissionDenied, forged.StatusCode);
        Assert.Empty(withReader.Models);
        Assert.Equal("registry", withBootstrap.Service);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
    }

    [Fact]
    public async Task Trainings_registry_reads_carry_its_read_key_where_the_registry_requires_keys_for_reads()
    {
        await using var locked = await StartRegistryAsync(requireKeyForReads: true);
        var reader = (await new RegistryClient(locked.Channel).CreateApiKeyAsync(
            new CreateApiKeyRequest { Name = "training", Role = "reader" }, With(Bootstrap))).Key;
        await using var withKey = TrainingServices(locked, reader);
        await using var withoutKey = TrainingServices(locked, readKey: null);

        var passed = await Assert.ThrowsAsync<RpcException>(() =>
            withKey.GetRequiredService<RegistryCheckpoints>().ResolveAsync("absent/1", CancellationToken.None));
        var refused = await Assert.ThrowsAsync<RpcException>(() =>
            withoutKey.GetRequiredService<RegistryCheckpoints>().ResolveAsync("absent/1", CancellationToken.None));

        // Past the key check, the lookup meets the missing model.
        Assert.Equal(StatusCode.NotFound, passed.StatusCode);
        Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);
    }

    /// <summary>The Training service's Registry client as Training registers it, pointed at <paramref name="registry"/>.</summary>
    private static ServiceProvider TrainingServices(InProcessGrpcHost registry, string? readKey)
    {
        var services = new ServiceCollection().AddLogging();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { [RegistryCheckpoints.ReadKeySetting] = readKey })
            .Build());
        RegistryCheckpoints.AddRegistryClient(services);
        // Instead of the service-discovery name the AppHost resolves.
        services.Configure<GrpcClientFactoryOptions>(nameof(RegistryClient), o => o.Address = registry.Address);
        services.AddSingleton<RegistryCheckpoints>();
        return services.BuildServiceProvider();
    }
}
