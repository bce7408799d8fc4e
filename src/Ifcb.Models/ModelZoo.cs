using Ifcb.Models.Architectures;

namespace Ifcb.Models;

/// <summary>
/// neuston's <c>get_namebrand_model</c>: every MODEL string the platform accepts, built for N classes with neuston's head
/// replacement already applied (the head layers have PyTorch's default init).
/// </summary>
public static class ModelZoo
{
    private sealed record Entry(Func<int, bool, ClassifierNet> Create, int InputSize, string? PretrainedWeightsName);

    private static readonly Dictionary<string, Entry> Entries = new(StringComparer.Ordinal)
    {
        ["inception_v3"] = new((n, pretrained) => new InceptionV3(n, transformInput: pretrained), 299, "inception_v3"),
        ["alexnet"] = new((n, _) => new AlexNet(n), 224, "alexnet"),
        ["squeezenet"] = new((n, _) => SqueezeNet.Neuston(n), 224, "squeezenet1_1"),
        ["squeezenet1_0"] = new((n, _) => SqueezeNet.SqueezeNet1_0(n), 224, "squeezenet1_0"),
        ["squeezenet1_1"] = new((n, _) => SqueezeNet.SqueezeNet1_1(n), 224, "squeezenet1_1"),
        ["vgg11"] = new((n, _) => Vgg.Vgg11(n), 224, "vgg11"),
        ["vgg11_bn"] = new((n, _) => Vgg.Vgg11Bn(n), 224, "vgg11_bn"),
        ["vgg13"] = new((n, _) => Vgg.Vgg13(n), 224, "vgg13"),
        ["vgg13_bn"] = new((n, _) => Vgg.Vgg13Bn(n), 224, "vgg13_bn"),
        ["vgg16"] = new((n, _) => Vgg.Vgg16(n), 224, "vgg16"),
        ["vgg16_bn"] = new((n, _) => Vgg.Vgg16Bn(n), 224, "vgg16_bn"),
        ["vgg19"] = new((n, _) => Vgg.Vgg19(n), 224, "vgg19"),
        ["vgg19_bn"] = new((n, _) => Vgg.Vgg19Bn(n), 224, "vgg19_bn"),
        ["resnet18"] = new((n, _) => ResNet.ResNet18(n), 224, "resnet18"),
        ["resnet34"] = new((n, _) => ResNet.ResNet34(n), 224, "resnet34"),
        ["resnet50"] = new((n, _) => ResNet.ResNet50(n), 224, "resnet50"),
        ["resnet101"] = new((n, _) => ResNet.ResNet101(n), 224, "resnet101"),
        ["resnet152"] = new((n, _) => ResNet.ResNet152(n), 224, "resnet152"),
        ["densenet121"] = new((n, _) => DenseNet.DenseNet121(n), 224, "densenet121"),
        ["densenet161"] = new((n, _) => DenseNet.DenseNet161(n), 224, "densenet161"),
        ["densenet169"] = new((n, _) => DenseNet.DenseNet169(n), 224, "densenet169"),
        ["densenet201"] = new((n, _) => DenseNet.DenseNet201(n), 224, "densenet201"),
        // No pretrained option: Cadene's ImageNet file is 1001-class and cannot be fetched here (see WeightsNotFoundException).
        ["inception_v4"] = new((n, _) => new InceptionV4(n), 299, null),
    };

    /// <summary>The MODEL names accepted by <see cref="Create"/>, in a stable order.</summary>
    public static IReadOnlyList<string> Architectures { get; } = [.. Entries.Keys];

    /// <summary>Image side the architecture is trained and run at: 299 for inception_v3/v4, 224 otherwise.</summary>
    public static int InputSize(string architecture) => Lookup(architecture).InputSize;

    /// <summary>True when ImageNet weights can be imported for the architecture (all but inception_v4).</summary>
    public static bool SupportsPretrained(string architecture) => Lookup(architecture).PretrainedWeightsName is not null;

    /// <summary>
    /// Base name of the torchvision weights file for the architecture (<c>squeezenet</c> → <c>squeezenet1_1</c>); the store
    /// keeps <c>{name}.pth</c> or <c>{name}.safetensors</c>.
    /// </summary>
    public static string PretrainedWeightsName(string architecture) =>
        Lookup(architecture).PretrainedWeightsName
        ?? throw new ArgumentException(
            $"Architecture '{architecture}' has no pretrained ImageNet weights in this platform; train it with --untrain.",
            nameof(architecture));

    /// <summary>
    /// Builds <paramref name="architecture"/> with its head replaced for <paramref name="numClasses"/> classes, in training
    /// mode, with random weights. <paramref name="pretrainedLayout"/> is the neuston <c>pretrained</c> flag: it changes the
    /// model itself only for inception_v3 (<c>transform_input</c>); the ImageNet weights are loaded separately by
    /// <see cref="Weights.PretrainedWeights"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Unknown architecture (the message lists the known ones).</exception>
    public static ClassifierNet Create(string architecture, int numClasses, bool pretrainedLayout) =>
        Lookup(architecture).Create(numClasses, pretrainedLayout);

    private static Entry Lookup(string architecture)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        return Entries.TryGetValue(architecture, out var entry)
            ? entry
            : throw new ArgumentException(
                $"Unknown model architecture '{architecture}'. Known architectures: {string.Join(", ", Architectures)}.",
                nameof(architecture));
    }
}
