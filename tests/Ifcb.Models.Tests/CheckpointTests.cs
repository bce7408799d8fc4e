using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Ifcb.Contracts;
using Ifcb.Models.Checkpoints;
using Ifcb.Platform;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Ifcb.Models.Tests;

public sealed class CheckpointTests(ITestOutputHelper output)
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

    [Fact]
    public void Hparams_json_keeps_format_1_byte_for_byte_and_format_1_files_written_before_still_load()
    {
        // fixtures/*.json are the hparams.json entries the first Checkpoint.Save wrote for these hparams.
        var full = new ModelHparams("squeezenet", ["class_0", "Strombidium-like"], 224, ImgNorm.Parse("0.1,0.2,0.3 0.4,0.5,0.6"), false,
            1234567, "model-a", "train-1", "sha256:abc", new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero), "0.1.0",
            new Dictionary<string, string> { ["best_epoch"] = "3" });
        var minimal = new ModelHparams("resnet18", ["a", "b"], 64, null, true, -5, "", "", null, DateTimeOffset.UnixEpoch, "", null);
        foreach (var (hparams, fixture) in new[] { (full, "hparams-format1.json"), (minimal, "hparams-format1-minimal.json") })
        {
            var golden = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "fixtures", fixture));
            using var model = ModelZoo.Create(hparams.Architecture, 2, hparams.Pretrained);
            using var saved = new MemoryStream();
            Checkpoint.Save(saved, hparams, model);
            saved.Position = 0;
            using (var zip = new ZipArchive(saved, ZipArchiveMode.Read, leaveOpen: true))
            using (var entry = zip.GetEntry(Checkpoint.HparamsEntry)!.Open())
            using (var written = new MemoryStream())
            {
                entry.CopyTo(written);
                Assert.Equal(Encoding.UTF8.GetString(golden), Encoding.UTF8.GetString(written.ToArray()));
            }

            // A file laid out exactly as the first version wrote it (deflated hparams, stored torch.save weights).
            using var old = new MemoryStream();
            using (var zip = new ZipArchive(old, ZipArchiveMode.Create, leaveOpen: true))
            {
                using (var entry = zip.CreateEntry(Checkpoint.HparamsEntry, CompressionLevel.Optimal).Open())
                    entry.Write(golden);
                using var weights = zip.CreateEntry(Checkpoint.WeightsEntry, CompressionLevel.NoCompression).Open();
                Checkpoint.ExportPyTorch(model, weights);
            }
            old.Position = 0;
            var loaded = Checkpoint.Load(old);
            using var loadedModel = loaded.Model;
            Assert.Equal(hparams, loaded.Hparams);
            foreach (var (key, tensor) in model.state_dict())
                Assert.True(tensor.allclose(loadedModel.state_dict()[key], rtol: 0, atol: 0), key);
        }
    }

    [Theory]
    [InlineData(20_000, nameof(Limits.MaxClasses))]
    [InlineData(2_000_000, nameof(Limits.MaxHparamsBytes))]
    public void Hparams_over_the_limits_are_refused_before_a_model_is_built(int classes, string limit)
    {
        // A real resnet18 state dict beside hparams claiming far more classes than its head has: the loader must stop at
        // the hparams, not build a 20,000-class model (or parse millions of labels) and then notice the weights.
        using var model = ModelZoo.Create("resnet18", 2, false);
        using var file = new MemoryStream();
        using (var zip = new ZipArchive(file, ZipArchiveMode.Create, leaveOpen: true))
        {
            using (var entry = new StreamWriter(zip.CreateEntry(Checkpoint.HparamsEntry, CompressionLevel.Fastest).Open()))
            {
                entry.Write("{\"format_version\":1,\"arch\":\"resnet18\",\"resize\":224,\"classes\":[");
                for (var i = 0; i < classes; i++)
                    entry.Write(i == 0 ? "\"c0\"" : ",\"c\"");
                entry.Write("]}");
            }
            using var weights = zip.CreateEntry(Checkpoint.WeightsEntry, CompressionLevel.NoCompression).Open();
            Checkpoint.ExportPyTorch(model, weights);
        }
        output.WriteLine($"checkpoint: {file.Length} bytes for {classes} labels");
        file.Position = 0;
        var clock = Stopwatch.StartNew();
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(file));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        output.WriteLine($"refused in {clock.ElapsedMilliseconds} ms, {allocated} bytes allocated: {error.Message}");
        Assert.Contains(limit, error.Message, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.True(allocated < 64L << 20, $"allocated {allocated} bytes");
    }

    [Fact]
    public void Loading_a_resnet18_checkpoint_streams_its_weights_into_the_model_without_copying_them_in_managed_memory()
    {
        var path = Path.Combine(Path.GetTempPath(), $"ifcb-checkpoint-{Guid.NewGuid():N}.ifcbmodel");
        try
        {
            manual_seed(5);
            using (var model = ModelZoo.Create("resnet18", 3, false))
            using (var file = File.Create(path))
                Checkpoint.Save(file, Hparams("resnet18", 3, false), model);
            var length = new FileInfo(path).Length;
            Checkpoint.Load(File.OpenRead(path)).Model.Dispose(); // warm up: JIT and libtorch's first allocations

            GC.Collect();
            var before = GC.GetAllocatedBytesForCurrentThread();
            LoadedCheckpoint loaded;
            using (var file = File.OpenRead(path))
                loaded = Checkpoint.Load(file);
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            using var loadedModel = loaded.Model;
            output.WriteLine($"resnet18 checkpoint of {length / 1e6:0.0} MB: Checkpoint.Load allocated {allocated / 1e6:0.00} MB of managed memory");

            Assert.True(allocated < length / 10, $"loading a {length}-byte checkpoint allocated {allocated} managed bytes");
            using var reference = ModelZoo.Create("resnet18", 3, false);
            using (var file = File.OpenRead(path))
            using (var zip = new ZipArchive(file))
            using (var weights = zip.GetEntry(Checkpoint.WeightsEntry)!.Open())
            using (var buffer = new MemoryStream())
            {
                weights.CopyTo(buffer);
                buffer.Position = 0;
                var stateDict = Weights.StateDictFile.Read(buffer, Weights.WeightsFormat.PyTorch);
                foreach (var (key, tensor) in loadedModel.state_dict())
                    Assert.True(tensor.allclose(stateDict[key], rtol: 0, atol: 0), key);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }
}
