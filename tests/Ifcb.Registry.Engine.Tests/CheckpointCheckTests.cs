using Azure.Storage.Blobs;
using Ifcb.Contracts;
using Ifcb.Platform;
using Ifcb.Platform.Checkpoints;

namespace Ifcb.Registry.Engine.Tests;

/// <summary>
/// The registry reads the hparams.json of every stored checkpoint (never its weights) and refuses one that is not a
/// checkpoint or does not match the declared metadata: InvalidArgument naming the field and both values, the version
/// FAILED, the bytes deleted.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class CheckpointCheckTests(AzuriteFixture azurite)
{
    private const string Actor = "tests";

    private async Task<(ModelRegistry Registry, BlobContainerClient Container)> ModelAsync(string name)
    {
        var (registry, container) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync(name, Actor);
        return (registry, container);
    }

    /// <summary>Registers, expects InvalidArgument, and checks nothing of the upload survives but a FAILED version.</summary>
    private static async Task<IfcbException> RefusedAsync(ModelRegistry registry, BlobContainerClient container, string model,
        TestCheckpoint checkpoint, NewModelVersion request)
    {
        var error = await Assert.ThrowsAsync<IfcbException>(() => registry.RegisterVersionAsync(model, request, checkpoint.Stream(), Actor));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        var version = await registry.GetVersionAsync($"{model}/1");
        Assert.Equal(ModelVersionStatus.Failed, version.Status);
        Assert.Equal(error.Message, version.StatusMessage);
        Assert.DoesNotContain(await container.BlobNamesAsync($"models/{model}/"), name => name.EndsWith(".ifcbmodel", StringComparison.Ordinal));
        return error;
    }

    [Fact]
    public async Task Bytes_that_are_not_a_checkpoint_are_refused()
    {
        var (registry, container) = await ModelAsync("not-a-zip");
        var bytes = TestCheckpoint.Random(8192);

        var error = await RefusedAsync(registry, container, "not-a-zip", bytes, bytes.Request());

        Assert.Contains("not a valid model checkpoint", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_zip_without_weights_is_refused()
    {
        var (registry, container) = await ModelAsync("no-weights");
        var zip = TestCheckpoint.Zip(new Dictionary<string, byte[]> { [CheckpointHeader.HparamsEntry] = TestCheckpoint.Hparams().ToJson() });

        var error = await RefusedAsync(registry, container, "no-weights", zip, zip.Request());

        Assert.Contains(CheckpointHeader.WeightsEntry, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_hparams_json_out_of_bounds_is_refused_naming_the_limit()
    {
        var (registry, container) = await ModelAsync("huge-resize");
        var checkpoint = TestCheckpoint.Create(hparams: TestCheckpoint.Hparams() with { Resize = 100_000 });

        var error = await RefusedAsync(registry, container, "huge-resize", checkpoint, checkpoint.Request());

        Assert.Contains("resize 100000", error.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(Limits.MaxResize), error.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, string, string[]> Mismatches() => new()
    {
        { "arch", "inception_v3", ["arch", "'resnet18'", "'inception_v3'"] },
        { "class order", "", ["classes[0]", "'Mesodinium_major'", "'Strombidium-like'"] },
        { "class count", "", ["classes", "2", "3"] },
        { "resize", "", ["resize", "299", "224"] },
        { "img_norm", "", ["img_norm", "0.667", "0.5"] },
        { "img_norm missing", "", ["img_norm", "none"] },
        { "pretrained", "", ["pretrained", "false", "true"] },
    };

    [Theory]
    [MemberData(nameof(Mismatches))]
    public async Task A_checkpoint_that_contradicts_its_declared_metadata_is_refused(string field, string value, string[] mentioned)
    {
        var model = "mismatch-" + field.Replace(' ', '-').Replace('_', '-');
        var (registry, container) = await ModelAsync(model);
        var hparams = TestCheckpoint.Hparams();
        hparams = field switch
        {
            "arch" => hparams with { Arch = value },
            "class order" => hparams with { Classes = [.. TestCheckpoint.Classes.Reverse()] },
            "class count" => hparams with { Classes = [.. TestCheckpoint.Classes, "detritus"] },
            "img_norm" => hparams with { ImgNorm = new CheckpointImgNorm([0.5], [0.161]) },
            "img_norm missing" => hparams with { ImgNorm = null },
            "pretrained" => hparams with { Pretrained = true },
            _ => hparams,
        };
        var checkpoint = TestCheckpoint.Create(hparams: hparams);
        var request = field == "resize" ? checkpoint.Request() with { Resize = 299 } : checkpoint.Request();

        var error = await RefusedAsync(registry, container, model, checkpoint, request);

        Assert.StartsWith("The checkpoint does not match its declared metadata", error.Message, StringComparison.Ordinal);
        Assert.All(mentioned, part => Assert.Contains(part, error.Message, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Fields_not_declared_are_not_compared_and_are_recorded_from_the_checkpoint()
    {
        var (registry, _) = await ModelAsync("undeclared");
        var checkpoint = TestCheckpoint.Create(hparams: TestCheckpoint.Hparams() with
        {
            ImgNorm = new CheckpointImgNorm([0.1, 0.2, 0.3], [0.4, 0.5, 0.6]),
        });
        var request = checkpoint.Request() with { Resize = null, ImgNorm = null, Classes = [] };

        var version = (await registry.RegisterVersionAsync("undeclared", request, checkpoint.Stream(), Actor)).Version;

        Assert.Equal(ModelVersionStatus.Ready, version.Status);
        Assert.Equal(224, version.Resize);
        Assert.Equal(ImgNorm.Parse("0.1,0.2,0.3 0.4,0.5,0.6"), version.ImgNorm);
        Assert.Equal(TestCheckpoint.Classes, version.Classes.ToArray());
        var stored = await registry.GetVersionAsync("undeclared/1");
        Assert.Equal((224, version.ImgNorm), (stored.Resize, stored.ImgNorm));
    }

    [Fact]
    public async Task Img_norm_declared_as_one_value_matches_three_equal_values_in_the_checkpoint()
    {
        var (registry, _) = await ModelAsync("norm-forms");
        var checkpoint = TestCheckpoint.Create(hparams: TestCheckpoint.Hparams() with { ImgNorm = new CheckpointImgNorm([0.667], [0.161]) });

        var version = (await registry.RegisterVersionAsync("norm-forms", checkpoint.Request(), checkpoint.Stream(), Actor)).Version;

        Assert.Equal(ModelVersionStatus.Ready, version.Status);
    }

    [Fact]
    public async Task Only_the_zip_directory_and_hparams_are_read_back_not_the_weights()
    {
        var (_, container) = await ModelAsync("large");
        var storage = FaultyStorage.Over(azurite, container);
        var registry = new ModelRegistry(storage.Container);
        var checkpoint = TestCheckpoint.Create(weightBytes: 16 * 1024 * 1024);

        var version = (await registry.RegisterVersionAsync("large", checkpoint.Request(), checkpoint.Stream(), Actor)).Version;

        Assert.Equal(ModelVersionStatus.Ready, version.Status);
        var readBack = storage.Responses.Where(r => r.Method == "GET" && r.Path.EndsWith(".ifcbmodel", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(readBack);
        Assert.InRange(readBack.Sum(r => r.Bytes), 1, 1024 * 1024);
    }
}
