using Azure.Storage.Blobs;
using Ifcb.Testing;

namespace Ifcb.Data.Tests;

/// <summary>One shared-launcher Azurite (<see cref="AzuriteInstance"/>) per test class; stopped and deleted on dispose.</summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    public AzuriteInstance Azurite { get; private set; } = null!;

    /// <summary>A container with a fresh name, not created yet (the stores create their own).</summary>
    public BlobContainerClient NewContainer() => Azurite.NewContainer("c");

    public async Task InitializeAsync() => Azurite = await AzuriteInstance.StartAsync();

    public async Task DisposeAsync() => await Azurite.DisposeAsync();
}
