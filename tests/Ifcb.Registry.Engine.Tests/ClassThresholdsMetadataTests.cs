namespace Ifcb.Registry.Engine.Tests;

/// <summary>The checkpoint's per-class thresholds become the version's metadata when it is stored.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class ClassThresholdsMetadataTests(AzuriteFixture azurite)
{
    private const string Actor = "tests";

    [Fact]
    public async Task A_version_lists_the_thresholds_its_checkpoint_carries_and_none_when_it_has_none()
    {
        var (registry, _) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync("thresholded", Actor);
        var withThresholds = TestCheckpoint.Create(hparams: TestCheckpoint.Hparams() with { ClassThresholds = [0.62, null] });
        var stored = await registry.RegisterVersionAsync("thresholded", withThresholds.Request("a"), withThresholds.Stream(), Actor);
        Assert.Equal(new Dictionary<string, double> { ["Mesodinium_major"] = 0.62 }, stored.Version.ClassThresholds);
        Assert.Equal(0.62, (await registry.GetVersionAsync("thresholded/1")).ClassThresholds!["Mesodinium_major"]);

        var without = TestCheckpoint.Create();
        Assert.Null((await registry.RegisterVersionAsync("thresholded", without.Request("b"), without.Stream(), Actor)).Version.ClassThresholds);
    }
}
