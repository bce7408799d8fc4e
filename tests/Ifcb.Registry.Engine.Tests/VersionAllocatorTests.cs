using Ifcb.Platform;

namespace Ifcb.Registry.Engine.Tests;

/// <summary>
/// <see cref="VersionAllocator"/> on its own: numbers come out dense and unique however many callers (in one process or
/// several) allocate at once, a slot someone else took is skipped, and model.json's counter follows.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class VersionAllocatorTests(AzuriteFixture azurite)
{
    private const string Sha = "0000000000000000000000000000000000000000000000000000000000000000";

    [Fact]
    public async Task Concurrent_allocations_in_two_processes_get_dense_unique_numbers()
    {
        var parts = await EngineParts.CreateAsync(azurite);
        var model = await parts.CreateModelAsync("busy");
        VersionAllocator[] processes = [parts.NewAllocator(), parts.NewAllocator()];

        var allocated = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => Task.Run(() =>
            processes[i % 2].AllocateAsync(model, number => parts.Version("busy", number, Sha), "tests", CancellationToken.None))));

        Assert.Equal(Enumerable.Range(1, 16), allocated.Select(v => v.Value.Version).Order());
        foreach (var stored in allocated)
        {
            var document = await parts.Store.ReadAsync<ModelVersion>(RegistryLayout.VersionDocument("busy", stored.Value.Version), CancellationToken.None);
            Assert.Equal(stored.ETag, document!.ETag);
        }

        Assert.Equal(16, (await parts.Models.ReadAsync("busy", CancellationToken.None)).Value.LatestVersion);
    }

    [Fact]
    public async Task A_slot_taken_elsewhere_is_skipped_and_a_recreated_model_starts_over()
    {
        var parts = await EngineParts.CreateAsync(azurite);
        var model = await parts.CreateModelAsync("probed");
        var allocator = parts.NewAllocator();
        Assert.Equal(1, (await allocator.AllocateAsync(model, n => parts.Version("probed", n, Sha), "tests", CancellationToken.None)).Value.Version);

        // Another process took version 2 but has not raised model.json's counter yet.
        Assert.NotNull(await parts.Store.TryCreateAsync(RegistryLayout.VersionDocument("probed", 2), parts.Version("probed", 2, Sha), CancellationToken.None));
        var drafted = new List<int>();
        var third = await allocator.AllocateAsync(model, n =>
        {
            drafted.Add(n);
            return parts.Version("probed", n, Sha);
        }, "tests", CancellationToken.None);
        Assert.Equal((3, ModelVersionStatus.Pending), (third.Value.Version, third.Value.Status));
        Assert.Equal([2, 3], drafted);
        var counter = (await parts.Models.ReadAsync("probed", CancellationToken.None)).Value;
        Assert.Equal(3, counter.LatestVersion);
        Assert.True(counter.Revision > model.Revision);

        // Deleted and created again under the same name: the allocator's memory of 3 belongs to the old model.
        foreach (var blob in await parts.Container.BlobNamesAsync(RegistryLayout.ModelPrefix("probed")))
        {
            await parts.Store.DeleteAsync(blob, CancellationToken.None);
        }

        parts.Clock.Advance(TimeSpan.FromMinutes(1));
        var recreated = await parts.CreateModelAsync("probed");
        Assert.Equal(1, (await allocator.AllocateAsync(recreated, n => parts.Version("probed", n, Sha), "tests", CancellationToken.None)).Value.Version);
    }

    [Fact]
    public async Task Past_the_last_number_allocation_is_refused_as_exhausted()
    {
        var parts = await EngineParts.CreateAsync(azurite);
        var full = await parts.CreateModelAsync("full") with { LatestVersion = RegistryValidation.MaxVersionNumber };

        var refused = await Assert.ThrowsAsync<IfcbException>(() =>
            parts.NewAllocator().AllocateAsync(full, n => parts.Version("full", n, Sha), "tests", CancellationToken.None));

        Assert.Equal(ErrorKind.ResourceExhausted, refused.Kind);
        Assert.Empty(await parts.Container.BlobNamesAsync(RegistryLayout.VersionsPrefix("full")));
    }
}
