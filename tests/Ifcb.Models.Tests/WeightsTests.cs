using Ifcb.Models.Weights;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Ifcb.Models.Tests;

public sealed class WeightsTests : IDisposable
{
    private readonly TemporaryDirectory _directory = new();
    private readonly FileSystemWeightsStore _store;

    public WeightsTests() => _store = new FileSystemWeightsStore(System.IO.Path.Combine(_directory.Path, "store"));

    public void Dispose() => _directory.Dispose();

    /// <summary>A stand-in for torchvision's ImageNet file: the 1000-class squeezenet1_1 state dict (5 MB).</summary>
    private static MemoryStream ImageNetSqueezeNet(Action<Dictionary<string, Tensor>>? edit = null)
    {
        manual_seed(11);
        using var model = ModelZoo.Create("squeezenet1_1", PretrainedWeights.ImageNetClasses, pretrainedLayout: true);
        var stateDict = model.state_dict();
        edit?.Invoke(stateDict);
        var stream = new MemoryStream();
        PyTorchPickler.PickleStateDict(stream, stateDict, leaveOpen: true);
        stream.Position = 0;
        return stream;
    }

    [Fact]
    public async Task Missing_weights_name_the_architecture_the_file_and_the_fix()
    {
        var error = await Assert.ThrowsAsync<WeightsNotFoundException>(() => PretrainedWeights.CreateAsync(_store, "resnet18", 3));
        Assert.Equal("resnet18", error.Architecture);
        Assert.Contains("resnet18.pth", error.Message, StringComparison.Ordinal);
        Assert.Contains("resnet18.safetensors", error.Message, StringComparison.Ordinal);
        Assert.Contains("ifcb weights import resnet18 FILE", error.Message, StringComparison.Ordinal);
        Assert.Contains("--untrain", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Inception_v4_has_no_pretrained_weights()
    {
        Assert.False(ModelZoo.SupportsPretrained("inception_v4"));
        var error = await Assert.ThrowsAsync<ArgumentException>(() => PretrainedWeights.CreateAsync(_store, "inception_v4", 3));
        Assert.Contains("--untrain", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Import_rejects_a_file_listing_missing_unexpected_and_mismatched_keys_and_stores_nothing()
    {
        using var scope = NewDisposeScope();
        using var file = ImageNetSqueezeNet(sd =>
        {
            sd.Remove("features.3.expand3x3.bias");
            sd["features.99.weight"] = zeros(1);
            sd["classifier.1.weight"] = zeros(10, 512, 1, 1);
        });
        var error = await Assert.ThrowsAsync<WeightsMismatchException>(
            () => PretrainedWeights.ImportAsync(_store, "squeezenet", file, WeightsFormat.PyTorch));
        Assert.Contains("missing keys: features.3.expand3x3.bias", error.Message, StringComparison.Ordinal);
        Assert.Contains("unexpected keys: features.99.weight", error.Message, StringComparison.Ordinal);
        Assert.Contains("classifier.1.weight: expected [1000, 512, 1, 1], file has [10, 512, 1, 1]", error.Message, StringComparison.Ordinal);
        Assert.Null(await _store.OpenReadAsync("squeezenet1_1.pth"));
    }

    [Fact]
    public async Task Import_rejects_a_file_that_is_not_a_state_dict()
    {
        using var file = new MemoryStream("definitely not a pickle"u8.ToArray());
        await Assert.ThrowsAsync<InvalidDataException>(() => PretrainedWeights.ImportAsync(_store, "resnet18", file, WeightsFormat.PyTorch));
    }

    [Theory]
    [InlineData(WeightsFormat.PyTorch, 7)]
    [InlineData(WeightsFormat.Safetensors, 7)]
    [InlineData(WeightsFormat.PyTorch, 1000)]
    public async Task Pretrained_load_takes_everything_but_the_head_which_keeps_its_fresh_init(WeightsFormat format, int classes)
    {
        using var scope = NewDisposeScope();
        using var pth = ImageNetSqueezeNet();
        var imageNet = StateDictFile.Read(pth, WeightsFormat.PyTorch);
        pth.Position = 0;
        var upload = pth;
        if (format == WeightsFormat.Safetensors)
        {
            upload = new MemoryStream();
            Safetensors.SaveStateDict(upload, imageNet, leaveOpen: true);
            upload.Position = 0;
        }

        var stored = await PretrainedWeights.ImportAsync(_store, "squeezenet", upload, format);
        Assert.Equal("squeezenet1_1" + StateDictFile.Extension(format), stored);

        using var model = await PretrainedWeights.CreateAsync(_store, "squeezenet", classes);
        var loaded = model.state_dict();
        foreach (var (key, tensor) in imageNet)
        {
            if (model.HeadKeys.Contains(key))
                continue;
            Assert.True(loaded[key].allclose(tensor, rtol: 0, atol: 0), $"{key} was not loaded");
        }
        // neuston replaces the head after loading, so even a 1000-class model does not keep the ImageNet classifier.
        Assert.Equal(classes, loaded["classifier.1.weight"].shape[0]);
        if (classes == 1000)
            Assert.False(loaded["classifier.1.weight"].allclose(imageNet["classifier.1.weight"], rtol: 0, atol: 0));
    }

    [Fact]
    public async Task Pretrained_inception_v3_uses_transform_input_and_loads_from_the_store()
    {
        using var scope = NewDisposeScope();
        using (var reference = ModelZoo.Create("inception_v3", PretrainedWeights.ImageNetClasses, pretrainedLayout: true))
        using (var file = new MemoryStream())
        {
            reference.save_py(file, leaveOpen: true);
            file.Position = 0;
            await PretrainedWeights.ImportAsync(_store, "inception_v3", file, WeightsFormat.PyTorch);
        }
        using var model = (Architectures.InceptionV3)await PretrainedWeights.CreateAsync(_store, "inception_v3", 2);
        Assert.True(model.TransformInput);
        Assert.Equal([2L, 768L], model.state_dict()["AuxLogits.fc.weight"].shape);
    }

    [Fact]
    public async Task File_store_round_trips_and_reports_absent_files_as_null()
    {
        Assert.Null(await _store.OpenReadAsync("alexnet.pth"));
        await _store.WriteAsync("alexnet.pth", new MemoryStream([1, 2, 3]));
        await using var stream = await _store.OpenReadAsync("alexnet.pth");
        Assert.NotNull(stream);
        using var copy = new MemoryStream();
        await stream!.CopyToAsync(copy);
        Assert.Equal(new byte[] { 1, 2, 3 }, copy.ToArray());
        Assert.Contains("alexnet.pth", _store.Describe("alexnet.pth"), StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentException>(() => _store.OpenReadAsync("../escape.pth"));
    }

    [Theory]
    [InlineData("resnet18.pth", WeightsFormat.PyTorch)]
    [InlineData("x.PT", WeightsFormat.PyTorch)]
    [InlineData("model.safetensors", WeightsFormat.Safetensors)]
    public void Format_follows_the_extension(string fileName, WeightsFormat expected) =>
        Assert.Equal(expected, StateDictFile.FormatOf(fileName));

    [Fact]
    public void Unknown_extension_is_rejected() => Assert.Throws<ArgumentException>(() => StateDictFile.FormatOf("weights.onnx"));
}
