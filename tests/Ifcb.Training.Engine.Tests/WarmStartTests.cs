using System.Text.Json;
using Ifcb.Models;
using Ifcb.Models.Checkpoints;
using Ifcb.Testing;
using static TorchSharp.torch;

namespace Ifcb.Training.Engine.Tests;

/// <summary>
/// <c>--from</c> (fine-tuning a trained model, classes mapped by name) and <c>--freeze features</c>, checked tensor by
/// tensor against the parent: resnet18 at 32 px on the real sample with one class renamed.
/// </summary>
public sealed class WarmStartTests : IDisposable
{
    private static readonly string Sample = Path.Combine(RepoPaths.Root, "testdata", "training-sample");
    private static readonly string[] ParentClasses = ["Mesodinium_major", "Strombidium-like"];
    private readonly string _scratch = Directory.CreateTempSubdirectory("ifcb-warm-start-").FullName;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    private LoadedCheckpoint Parent(out string path)
    {
        manual_seed(5);
        var model = ModelZoo.Create("resnet18", 2, pretrainedLayout: false);
        var hparams = new ModelHparams("resnet18", ParentClasses, 32, null, false, 5, "parent", "parent-train", null,
            DateTimeOffset.UnixEpoch, "tests");
        path = Path.Combine(_scratch, "parent.ifcbmodel");
        using (var file = File.Create(path))
            Checkpoint.Save(file, hparams, model);
        return new LoadedCheckpoint(hparams, model);
    }

    /// <summary>torch.equal: same shape, same values.</summary>
    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    private static Dictionary<string, Tensor> Parameters(ClassifierNet model) =>
        model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter.detach().clone());

    [Fact]
    public void Kept_classes_keep_their_head_rows_and_the_body_is_the_parents()
    {
        var parent = Parent(out _);
        using var parentModel = parent.Model;
        var before = parent.Model.state_dict();

        // Strombidium-like renamed: Mesodinium_major keeps its row, the new class gets a fresh one.
        var (renamed, mapping) = WarmStart.From(parent, "resnet18", ["Mesodinium_major", "Strombidium_renamed"]);
        using (renamed)
        {
            Assert.Equal([("Mesodinium_major", 0, 0)], mapping.Kept);
            Assert.Equal(["Strombidium_renamed"], mapping.Added);
            Assert.Equal(["Strombidium-like"], mapping.Dropped);
            var after = renamed.state_dict();
            foreach (var (key, tensor) in after.Where(kv => !renamed.HeadKeys.Contains(kv.Key)))
                Assert.True(Same(tensor, before[key]), key);
            Assert.True(Same(after["fc.weight"][0], before["fc.weight"][0]));
            Assert.True(Same(after["fc.bias"][0], before["fc.bias"][0]));
            Assert.False(Same(after["fc.weight"][1], before["fc.weight"][1]));
        }

        // Reordered classes: the rows follow the names.
        var (reordered, swapped) = WarmStart.From(parent, "resnet18", ["Strombidium-like", "Mesodinium_major"]);
        using (reordered)
        {
            Assert.False(swapped.SameHead);
            Assert.True(Same(reordered.state_dict()["fc.weight"][0], before["fc.weight"][1]));
            Assert.True(Same(reordered.state_dict()["fc.weight"][1], before["fc.weight"][0]));
        }

        // The same classes: the whole head is the parent's.
        var (same, kept) = WarmStart.From(parent, "resnet18", ParentClasses);
        using (same)
        {
            Assert.True(kept.SameHead);
            Assert.True(Same(same.state_dict()["fc.weight"], before["fc.weight"]));
        }

        var other = Assert.Throws<ArgumentException>(() => WarmStart.From(parent, "resnet34", ParentClasses));
        Assert.Contains("resnet18 model", other.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_frozen_fine_tune_trains_only_the_head_and_records_its_parent()
    {
        var parent = Parent(out var parentPath);
        using var parentModel = parent.Model;
        var parentParameters = Parameters(parent.Model);
        // The sample with Strombidium-like renamed.
        var dataset = Path.Combine(_scratch, "renamed");
        foreach (var (from, to) in new[] { ("Mesodinium_major", "Mesodinium_major"), ("Strombidium-like", "Strombidium_renamed") })
        {
            Directory.CreateDirectory(Path.Combine(dataset, to));
            foreach (var file in Directory.EnumerateFiles(Path.Combine(Sample, from)))
                File.Copy(file, Path.Combine(dataset, to, Path.GetFileName(file)));
        }
        var options = new TrainingOptions
        {
            Architecture = "resnet18", TrainId = "fine-tune", Pretrained = true, Seed = 9, Resize = 32, BatchSize = 8, Emax = 1, Emin = 1,
            DecodeWorkers = 1, FreezeFeatures = true,
            From = WarmStartSource.Read(parentPath, "plankton@production", parentVersion: "plankton/3"),
        };
        var sink = new DirectoryArtifactSink(Path.Combine(_scratch, "out"));
        var inputs = TrainingPreparation.FromSource(options, dataset, weights: null);
        var result = await new TrainingRun(inputs, sink, new QuietObserver()).RunAsync(CancellationToken.None);

        LoadedCheckpoint child;
        await using (var file = File.OpenRead(Path.Combine(sink.Directory, result.BestCheckpointName)))
            child = Checkpoint.Load(file);
        using var childModel = child.Model;
        // The parent's layout (no ImageNet weights were asked for: pretrained is the parent's flag).
        Assert.False(child.Hparams.Pretrained);
        var trained = Parameters(child.Model);
        foreach (var (name, tensor) in trained.Where(kv => !child.Model.HeadKeys.Contains(kv.Key)))
            Assert.True(Same(tensor, parentParameters[name]), $"{name} changed although the body was frozen");
        Assert.False(Same(trained["fc.weight"][0], parentParameters["fc.weight"][0]), "the head did not train");

        using var args = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(sink.Directory, "args.json")));
        Assert.Equal("plankton@production", args.RootElement.GetProperty("from").GetString());
        Assert.Equal("plankton/3", args.RootElement.GetProperty("parent_version").GetString());
        Assert.Equal("features", args.RootElement.GetProperty("freeze").GetString());

        Assert.Throws<ArgumentException>(() => (options with { FreezeFeatures = false, FreezeEpochs = 1 }).Validate());
        Assert.Throws<ArgumentException>(() => (options with { FreezeEpochs = 2 }).Validate());
    }

    private sealed class QuietObserver : ITrainingObserver
    {
        public ValueTask OnStartAsync(int firstEpoch, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask OnBatchAsync(BatchProgress progress, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask OnEpochAsync(EpochRecord epoch, CancellationToken cancellationToken) => ValueTask.CompletedTask;
    }
}
