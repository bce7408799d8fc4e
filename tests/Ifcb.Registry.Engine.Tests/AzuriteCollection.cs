using Azure.Storage.Blobs;
using Ifcb.Testing;

namespace Ifcb.Registry.Engine.Tests;

/// <summary>One Azurite process for every test class in the collection; each test gets its own container.</summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    public AzuriteInstance Azurite { get; private set; } = null!;

    public async Task InitializeAsync() => Azurite = await AzuriteInstance.StartAsync();

    public async Task DisposeAsync() => await Azurite.DisposeAsync();

    public async Task<(ModelRegistry Registry, BlobContainerClient Container)> NewRegistryAsync(
        RegistryOptions? options = null, TimeProvider? clock = null)
    {
        var container = await Azurite.CreateContainerAsync("registry");
        return (new ModelRegistry(container, options, clock), container);
    }
}

[CollectionDefinition(Name)]
public sealed class AzuriteCollection : ICollectionFixture<AzuriteFixture>
{
    public const string Name = "Azurite";
}
