using Ifcb.Models.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Ifcb.Models.Tests;

/// <summary>
/// Builds torchvision references for one family in ONE python run: seeded weights with randomised BatchNorm statistics,
/// a fixed input, eval-mode logits. Small inputs where the architecture allows, batch 2. The deep families are compared
/// in float64 so that the 1e-4 tolerance tests the architecture, not libtorch's float32 kernels; the export tests and the
/// shallow families run in float32.
/// </summary>
public abstract class ReferenceFamily : TemporaryDirectory
{
    public const double Tolerance = 1e-4;

    protected ReferenceFamily(params string[] specs) => Log = TorchvisionReference.Run("reference", Path, specs);

    public string Log { get; }

    /// <summary>Loads <c>{name}.pth</c> strictly into our model and compares eval-mode logits with torchvision's.</summary>
    public void AssertLogitsMatch(string name, string architecture, bool pretrainedLayout = false)
    {
        var weightsPath = System.IO.Path.Combine(Path, name + ".pth");
        using var scope = NewDisposeScope();
        using var model = ModelZoo.Create(architecture, 5, pretrainedLayout);
        var stateDict = TorchvisionReference.ReadTensors(weightsPath);
        // References are float32, or float64 for deep nets (see make_reference.py); compute in the reference's precision.
        var precision = stateDict.Values.First(t => t.is_floating_point()).dtype;
        model.to(precision);
        var comparison = StateDictComparison.Compare(model, stateDict);
        Assert.True(comparison.Matches, $"{architecture} keys differ from torchvision's: {comparison.Describe()}");
        Assert.Equal(model.state_dict().Count, stateDict.Count);
        using (no_grad())
            model.load_state_dict(stateDict, strict: true);
        File.Delete(weightsPath); // the VGG files are ~0.5 GB each
        model.eval();

        var io = TorchvisionReference.ReadTensors(System.IO.Path.Combine(Path, name + ".io.pth"));
        using (no_grad())
        {
            var output = model.call(io["input"]);
            Assert.Null(output.Aux);
            var difference = TorchvisionReference.MaxAbsDifference(output.Main, io["logits"]);
            Assert.True(difference <= Tolerance, $"{name}: max |Δlogits| = {difference:E3} > {Tolerance:E0}\n{Log}");
            Assert.True(io["logits"].abs().max().to_type(ScalarType.Float64).item<double>() > 1e-3, $"{name}: reference logits are all ~0, the comparison would prove nothing");
        }
    }
}

public sealed class ResNetReferences() : ReferenceFamily(
    "resnet18=resnet18,64,f64", "resnet34=resnet34,64,f64", "resnet50=resnet50,64,f64", "resnet101=resnet101,64,f64", "resnet152=resnet152,64,f64");

public sealed class DenseNetReferences() : ReferenceFamily(
    "densenet121=densenet121,64,f64", "densenet161=densenet161,64,f64", "densenet169=densenet169,64,f64", "densenet201=densenet201,64,f64");

public sealed class SqueezeNetReferences() : ReferenceFamily("squeezenet1_0=squeezenet1_0,64", "squeezenet1_1=squeezenet1_1,64");

public sealed class InceptionV3References() : ReferenceFamily(
    "inception_v3=inception_v3,75,f64", "inception_v3_transform=inception_v3,75,transform,f64");

/// <summary>AlexNet and VGG have an adaptive average pool before the classifier, so 64² and 32² inputs suffice.</summary>
public sealed class AlexNetVggReferences() : ReferenceFamily(
    "alexnet=alexnet,64",
    "vgg11=vgg11,32", "vgg11_bn=vgg11_bn,32", "vgg13=vgg13,32", "vgg13_bn=vgg13_bn,32",
    "vgg16=vgg16,32", "vgg16_bn=vgg16_bn,32", "vgg19=vgg19,32", "vgg19_bn=vgg19_bn,32");

public sealed class ResNetParityTests(ResNetReferences references) : IClassFixture<ResNetReferences>
{
    [Theory]
    [InlineData("resnet18")]
    [InlineData("resnet34")]
    [InlineData("resnet50")]
    [InlineData("resnet101")]
    [InlineData("resnet152")]
    public void Logits_match_torchvision(string architecture) => references.AssertLogitsMatch(architecture, architecture);
}

public sealed class DenseNetParityTests(DenseNetReferences references) : IClassFixture<DenseNetReferences>
{
    [Theory]
    [InlineData("densenet121")]
    [InlineData("densenet161")]
    [InlineData("densenet169")]
    [InlineData("densenet201")]
    public void Logits_match_torchvision(string architecture) => references.AssertLogitsMatch(architecture, architecture);
}

public sealed class SqueezeNetParityTests(SqueezeNetReferences references) : IClassFixture<SqueezeNetReferences>
{
    [Theory]
    [InlineData("squeezenet1_0", "squeezenet1_0")]
    [InlineData("squeezenet1_1", "squeezenet1_1")]
    public void Logits_match_torchvision(string name, string architecture) => references.AssertLogitsMatch(name, architecture);

    [Fact]
    public void Neustons_squeezenet_is_squeezenet1_1()
    {
        // Same reference file, loaded into the zoo's "squeezenet": proves the alias is 1.1 with identical keys.
        using var a = ModelZoo.Create("squeezenet", 5, false);
        using var b = ModelZoo.Create("squeezenet1_1", 5, false);
        var shapesA = a.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        var shapesB = b.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        Assert.Equal(shapesB.Keys.Order(), shapesA.Keys.Order());
        Assert.All(shapesA, kv => Assert.Equal(shapesB[kv.Key], kv.Value));
    }
}

public sealed class InceptionV3ParityTests(InceptionV3References references) : IClassFixture<InceptionV3References>
{
    [Fact]
    public void Logits_match_torchvision_without_transform_input() =>
        references.AssertLogitsMatch("inception_v3", "inception_v3", pretrainedLayout: false);

    [Fact]
    public void Logits_match_torchvision_with_transform_input_when_pretrained() =>
        references.AssertLogitsMatch("inception_v3_transform", "inception_v3", pretrainedLayout: true);
}

public sealed class AlexNetVggParityTests(AlexNetVggReferences references) : IClassFixture<AlexNetVggReferences>
{
    [Theory]
    [InlineData("alexnet")]
    [InlineData("vgg11")]
    [InlineData("vgg11_bn")]
    [InlineData("vgg13")]
    [InlineData("vgg13_bn")]
    [InlineData("vgg16")]
    [InlineData("vgg16_bn")]
    [InlineData("vgg19")]
    [InlineData("vgg19_bn")]
    public void Logits_match_torchvision(string architecture) => references.AssertLogitsMatch(architecture, architecture);
}
