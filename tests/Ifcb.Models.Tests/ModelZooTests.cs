using static TorchSharp.torch;

namespace Ifcb.Models.Tests;

public sealed class ModelZooTests
{
    public static TheoryData<string> AllArchitectures() => [.. ModelZoo.Architectures];

    /// <summary>neuston's replaced layer per architecture, with its input width.</summary>
    private static readonly Dictionary<string, (string Key, long InFeatures)[]> Heads = new()
    {
        ["inception_v3"] = [("fc", 2048), ("AuxLogits.fc", 768)],
        ["alexnet"] = [("classifier.6", 4096)],
        ["squeezenet"] = [("classifier.1", 512)],
        ["squeezenet1_0"] = [("classifier.1", 512)],
        ["squeezenet1_1"] = [("classifier.1", 512)],
        ["vgg11"] = [("classifier.6", 4096)],
        ["vgg11_bn"] = [("classifier.6", 4096)],
        ["vgg13"] = [("classifier.6", 4096)],
        ["vgg13_bn"] = [("classifier.6", 4096)],
        ["vgg16"] = [("classifier.6", 4096)],
        ["vgg16_bn"] = [("classifier.6", 4096)],
        ["vgg19"] = [("classifier.6", 4096)],
        ["vgg19_bn"] = [("classifier.6", 4096)],
        ["resnet18"] = [("fc", 512)],
        ["resnet34"] = [("fc", 512)],
        ["resnet50"] = [("fc", 2048)],
        ["resnet101"] = [("fc", 2048)],
        ["resnet152"] = [("fc", 2048)],
        ["densenet121"] = [("classifier", 1024)],
        ["densenet161"] = [("classifier", 2208)],
        ["densenet169"] = [("classifier", 1664)],
        ["densenet201"] = [("classifier", 1920)],
        ["inception_v4"] = [("last_linear", 1536)],
    };

    [Fact]
    public void Architectures_are_neustons_models_plus_torchvision_variants()
    {
        Assert.Equal(Heads.Keys.Order(), ModelZoo.Architectures.Order());
    }

    [Theory]
    [MemberData(nameof(AllArchitectures))]
    public void Head_is_replaced_for_N_classes_and_the_output_is_B_by_N(string architecture)
    {
        const int classes = 3;
        using var scope = NewDisposeScope();
        using var model = ModelZoo.Create(architecture, classes, pretrainedLayout: false);
        Assert.Equal(architecture, model.Architecture);
        Assert.Equal(classes, model.NumClasses);

        var stateDict = model.state_dict();
        var expectedHeadKeys = Heads[architecture].SelectMany(h => new[] { h.Key + ".weight", h.Key + ".bias" }).ToList();
        Assert.Equal(expectedHeadKeys.Order(), model.HeadKeys.Order());
        foreach (var (key, inFeatures) in Heads[architecture])
        {
            var weight = stateDict[key + ".weight"];
            Assert.Equal(classes, weight.shape[0]);
            Assert.Equal(inFeatures, weight.shape[1]);
            Assert.Equal([classes], stateDict[key + ".bias"].shape);
        }
        Assert.DoesNotContain(stateDict.Keys, k => k.Contains("._", StringComparison.Ordinal) || k.StartsWith('_'));

        // Smallest input each family accepts, to keep the suite fast (inception_v4 is checked at 299 below).
        var side = architecture switch
        {
            "inception_v3" => 75,
            "inception_v4" => 75,
            _ when architecture.StartsWith("vgg", StringComparison.Ordinal) => 32,
            _ => 64,
        };
        model.eval();
        using (no_grad())
        {
            var output = model.call(rand(2, 3, side, side));
            Assert.Equal([2, classes], output.Main.shape);
            Assert.Null(output.Aux);
        }
    }

    [Theory]
    [InlineData("inception_v3", 299)]
    [InlineData("inception_v4", 299)]
    [InlineData("alexnet", 224)]
    [InlineData("squeezenet", 224)]
    [InlineData("vgg16_bn", 224)]
    [InlineData("resnet50", 224)]
    [InlineData("densenet121", 224)]
    public void Input_size_is_299_for_the_inceptions_and_224_otherwise(string architecture, int expected)
    {
        Assert.Equal(expected, ModelZoo.InputSize(architecture));
    }

    [Fact]
    public void Unknown_architecture_is_an_ArgumentException_listing_the_known_ones()
    {
        var error = Assert.Throws<ArgumentException>(() => ModelZoo.Create("resnet9000", 3, false));
        Assert.Contains("resnet9000", error.Message, StringComparison.Ordinal);
        foreach (var known in ModelZoo.Architectures)
            Assert.Contains(known, error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => ModelZoo.InputSize("googlenet"));
    }

    [Fact]
    public void Zero_classes_is_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ModelZoo.Create("resnet18", 0, false));
    }

    [Fact]
    public void Inception_v4_maps_299_to_B_by_N()
    {
        using var scope = NewDisposeScope();
        using var model = ModelZoo.Create("inception_v4", 4, pretrainedLayout: false);
        Assert.Equal(299, model.InputSize);
        Assert.Equal([4L, 1536L], model.state_dict()["last_linear.weight"].shape);
        Assert.Contains("features.21.branch3.1.conv.weight", model.state_dict().Keys);
        model.eval();
        using (no_grad())
            Assert.Equal([1L, 4L], model.call(rand(1, 3, 299, 299)).Main.shape);
    }

    [Fact]
    public void Inception_v3_returns_aux_logits_in_training_and_the_loss_adds_0_4_of_their_cross_entropy()
    {
        using var scope = NewDisposeScope();
        manual_seed(7);
        using var model = ModelZoo.Create("inception_v3", 3, pretrainedLayout: false);
        var input = rand(2, 3, 299, 299);
        var targets = tensor(new long[] { 0, 2 });

        model.train();
        var output = model.call(input);
        Assert.NotNull(output.Aux);
        Assert.Equal([2L, 3L], output.Aux!.shape);
        Assert.Equal([2L, 3L], output.Main.shape);

        var loss = ClassifierLoss.Compute(output, targets);
        var expected = nn.functional.cross_entropy(output.Main, targets) + 0.4 * nn.functional.cross_entropy(output.Aux, targets);
        Assert.Equal(expected.item<float>(), loss.item<float>(), 5);
        Assert.True(nn.functional.cross_entropy(output.Aux, targets).item<float>() > 0.1f);
        loss.backward();
        var auxHead = model.named_parameters().Single(p => p.name == "AuxLogits.fc.weight").parameter;
        Assert.NotNull(auxHead.grad);

        model.eval();
        using (no_grad())
        {
            var evalOutput = model.call(input);
            Assert.Null(evalOutput.Aux);
            Assert.Equal(
                nn.functional.cross_entropy(evalOutput.Main, targets).item<float>(),
                ClassifierLoss.Compute(evalOutput, targets).item<float>());
        }
    }

    [Fact]
    public void ForwardLoss_leaves_only_the_loss_in_the_callers_scope_and_gives_the_same_loss_and_gradients()
    {
        manual_seed(3);
        using var model = ModelZoo.Create("resnet18", 3, pretrainedLayout: false);
        model.train();
        using var input = rand(2, 3, 64, 64);
        using var targets = tensor(new long[] { 0, 2 });

        float scopedLoss;
        float[] scopedGrad;
        using (var scope = NewDisposeScope())
        {
            var loss = ClassifierLoss.ForwardLoss(model, input, targets);
            Assert.Equal(1, scope.DisposablesCount); // the activations' handles are gone; autograd keeps what it needs
            loss.backward();
            scopedLoss = loss.item<float>();
            scopedGrad = model.named_parameters().Single(p => p.name == "conv1.weight").parameter.grad!.data<float>().ToArray();
        }
        model.zero_grad();
        using (var scope = NewDisposeScope())
        {
            var loss = ClassifierLoss.Compute(model.call(input), targets);
            Assert.True(scope.DisposablesCount > 20);
            loss.backward();
            Assert.Equal(loss.item<float>(), scopedLoss, 5);
            var grad = model.named_parameters().Single(p => p.name == "conv1.weight").parameter.grad!.data<float>().ToArray();
            Assert.Equal(grad.Length, scopedGrad.Length);
            var scale = grad.Max(MathF.Abs);
            Assert.True(scale > 0);
            Assert.All(grad.Zip(scopedGrad), pair => Assert.True(MathF.Abs(pair.First - pair.Second) <= 1e-5f * scale, $"{pair.First} vs {pair.Second}"));
        }
    }

    [Fact]
    public void Inception_v3_applies_transform_input_exactly_when_pretrained()
    {
        using var scope = NewDisposeScope();
        using var untrained = (Architectures.InceptionV3)ModelZoo.Create("inception_v3", 3, pretrainedLayout: false);
        using var pretrained = (Architectures.InceptionV3)ModelZoo.Create("inception_v3", 3, pretrainedLayout: true);
        Assert.False(untrained.TransformInput);
        Assert.True(pretrained.TransformInput);
    }
}
