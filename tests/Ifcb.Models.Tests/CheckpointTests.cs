using System.IO.Compression;
using System.Text.Json;
using Ifcb.Data;
using Ifcb.Models.Checkpoints;
using static TorchSharp.torch;

namespace Ifcb.Models.Tests;

public sealed class CheckpointTests
{
    private static ModelHparams Hparams(string architecture, int classes, bool pretrained, ImgNorm? norm = null) => new(
        architecture,
        [.. Enumerable.Range(0, classes).Select(i => $"class_{i}")],
        ModelZoo.InputSize(architecture),
        norm,
        pretrained,
        Seed: 1234567,
        ModelId: "model-a",
        TrainingId: "train-1",
        DatasetFingerprint: "sha256:abc",
        CreatedUtc: new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero),
        PlatformVersion: "0.1.0",
        Extras: new Dictionary<string, string> { ["best_epoch"] = "3" });

    [Theory]
    [InlineData("resnet18", false, 64)]
    [InlineData("inception_v3", true, 75)]
    [InlineData("squeezenet", false, 64)]
    public void Round_trip_gives_identical_hparams_and_logits_and_an_eval_mode_model(string architecture, bool pretrained, int side)
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        using var model = ModelZoo.Create(architecture, 3, pretrained);
        // Running statistics that are not their defaults, so that a buffer lost in the round trip would show.
        TorchvisionReference.CalibrateBatchNorm(model, side);
        var input = rand(2, 3, side, side);
        Tensor before;
        using (no_grad())
            before = model.call(input).Main;

        var hparams = Hparams(architecture, 3, pretrained, ImgNorm.Parse("0.667 0.161"));
        using var stream = new MemoryStream();
        Checkpoint.Save(stream, hparams, model);
        stream.Position = 0;
        var loaded = Checkpoint.Load(stream);
        using var loadedModel = loaded.Model;

        Assert.Equal(hparams, loaded.Hparams);
        Assert.False(loadedModel.training);
        Assert.Equal(architecture, loadedModel.Architecture);
        using (no_grad())
            Assert.Equal(0.0, TorchvisionReference.MaxAbsDifference(before, loadedModel.call(input).Main));
    }

    [Fact]
    public void Inception_v4_round_trips()
    {
        using var scope = NewDisposeScope();
        using var model = ModelZoo.Create("inception_v4", 2, false);
        TorchvisionReference.CalibrateBatchNorm(model, 75);
        // Its logits average over the whole final map, so 75 pixels exercise every layer at a fraction of 299's cost.
        var input = rand(1, 3, 75, 75);
        Tensor before;
        using (no_grad())
            before = model.call(input).Main;
        using var stream = new MemoryStream();
        Checkpoint.Save(stream, Hparams("inception_v4", 2, false), model);
        stream.Position = 0;
        using var loaded = Checkpoint.Load(stream).Model;
        using (no_grad())
            Assert.Equal(0.0, TorchvisionReference.MaxAbsDifference(before, loaded.call(input).Main));
    }

    [Fact]
    public void Hparams_are_plain_json_beside_a_torch_save_state_dict()
    {
        using var model = ModelZoo.Create("squeezenet", 2, false);
        using var stream = new MemoryStream();
        Checkpoint.Save(stream, Hparams("squeezenet", 2, false, ImgNorm.Parse("0.1,0.2,0.3 0.4,0.5,0.6")), model);
        stream.Position = 0;
        using var zip = new ZipArchive(stream, ZipArchiveMode.Read);
        Assert.Equal([Checkpoint.HparamsEntry, Checkpoint.WeightsEntry], zip.Entries.Select(e => e.FullName).ToArray());
        using var json = JsonDocument.Parse(zip.GetEntry(Checkpoint.HparamsEntry)!.Open());
        var root = json.RootElement;
        Assert.Equal("squeezenet", root.GetProperty("arch").GetString());
        Assert.Equal(["class_0", "class_1"], root.GetProperty("classes").EnumerateArray().Select(e => e.GetString() ?? "").ToArray());
        Assert.Equal(224, root.GetProperty("resize").GetInt32());
        Assert.Equal(0.2, root.GetProperty("img_norm").GetProperty("mean")[1].GetDouble());
        Assert.Equal("train-1", root.GetProperty("training_id").GetString());
        Assert.Equal(1, root.GetProperty("format_version").GetInt32());
    }

    [Fact]
    public void Hparams_that_do_not_describe_the_model_are_rejected_on_save()
    {
        using var model = ModelZoo.Create("squeezenet", 2, false);
        using var stream = new MemoryStream();
        Assert.Throws<ArgumentException>(() => Checkpoint.Save(stream, Hparams("squeezenet", 3, false), model));
        Assert.Throws<ArgumentException>(() => Checkpoint.Save(stream, Hparams("resnet18", 2, false), model));
    }

    [Fact]
    public void A_file_that_is_not_a_checkpoint_is_InvalidDataException()
    {
        using var garbage = new MemoryStream("not a zip at all"u8.ToArray());
        Assert.Throws<InvalidDataException>(() => Checkpoint.Load(garbage));

        using var wrongZip = new MemoryStream();
        using (var zip = new ZipArchive(wrongZip, ZipArchiveMode.Create, leaveOpen: true))
            zip.CreateEntry("readme.txt");
        wrongZip.Position = 0;
        var error = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(wrongZip));
        Assert.Contains(Checkpoint.HparamsEntry, error.Message, StringComparison.Ordinal);
    }
}
