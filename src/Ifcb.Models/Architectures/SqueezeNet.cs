using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ifcb.Models.Architectures;

/// <summary>
/// torchvision 0.14 SqueezeNet 1.0 and 1.1: <c>features.{i}.squeeze/expand1x1/expand3x3</c>, <c>classifier.1</c> (the
/// 1×1 convolution neuston replaces). The head ends in ReLU and global average pooling, so logits are ≥ 0.
/// </summary>
public sealed class SqueezeNet : ClassifierNet
{
    private readonly Sequential _features;
    private readonly Sequential _classifier;

    private SqueezeNet(string architecture, bool version1_0, int numClasses, double dropout = 0.5)
        : base(architecture, numClasses, 224)
    {
        _features = version1_0
            ? nn.Sequential(
                nn.Conv2d(3, 96, kernel_size: 7, stride: 2),
                nn.ReLU(inplace: true),
                nn.MaxPool2d(kernel_size: 3, stride: 2, ceil_mode: true),
                new Fire(96, 16, 64, 64),
                new Fire(128, 16, 64, 64),
                new Fire(128, 32, 128, 128),
                nn.MaxPool2d(kernel_size: 3, stride: 2, ceil_mode: true),
                new Fire(256, 32, 128, 128),
                new Fire(256, 48, 192, 192),
                new Fire(384, 48, 192, 192),
                new Fire(384, 64, 256, 256),
                nn.MaxPool2d(kernel_size: 3, stride: 2, ceil_mode: true),
                new Fire(512, 64, 256, 256))
            : nn.Sequential(
                nn.Conv2d(3, 64, kernel_size: 3, stride: 2),
                nn.ReLU(inplace: true),
                nn.MaxPool2d(kernel_size: 3, stride: 2, ceil_mode: true),
                new Fire(64, 16, 64, 64),
                new Fire(128, 16, 64, 64),
                nn.MaxPool2d(kernel_size: 3, stride: 2, ceil_mode: true),
                new Fire(128, 32, 128, 128),
                new Fire(256, 32, 128, 128),
                nn.MaxPool2d(kernel_size: 3, stride: 2, ceil_mode: true),
                new Fire(256, 48, 192, 192),
                new Fire(384, 48, 192, 192),
                new Fire(384, 64, 256, 256),
                new Fire(512, 64, 256, 256));
        var head = nn.Conv2d(512, numClasses, kernel_size: 1);
        _classifier = nn.Sequential(
            nn.Dropout(dropout),
            head,
            nn.ReLU(inplace: true),
            nn.AdaptiveAvgPool2d(new long[] { 1, 1 }));
        register_module("features", _features);
        register_module("classifier", _classifier);

        // torchvision's SqueezeNet init; the replaced head keeps PyTorch's default init as in neuston.
        using var _ = no_grad();
        foreach (var module in modules())
        {
            if (module is Conv2d conv && !ReferenceEquals(conv, head))
            {
                nn.init.kaiming_uniform_(conv.weight!);
                nn.init.zeros_(conv.bias!);
            }
        }
    }

    public static SqueezeNet SqueezeNet1_0(int numClasses) => new("squeezenet1_0", true, numClasses);
    public static SqueezeNet SqueezeNet1_1(int numClasses) => new("squeezenet1_1", false, numClasses);

    /// <summary>neuston's <c>squeezenet</c>: SqueezeNet 1.1 under its own zoo name.</summary>
    public static SqueezeNet Neuston(int numClasses) => new("squeezenet", false, numClasses);

    public override IReadOnlyList<string> HeadKeys { get; } = ["classifier.1.weight", "classifier.1.bias"];

    public override ModelOutput forward(Tensor input) =>
        new(_classifier.call(_features.call(input)).flatten(1), null);

    internal sealed class Fire : ExplicitlyNamedModule
    {
        private readonly Conv2d _squeeze, _expand1x1, _expand3x3;

        public Fire(long inplanes, long squeezePlanes, long expand1x1Planes, long expand3x3Planes) : base(nameof(Fire))
        {
            _squeeze = nn.Conv2d(inplanes, squeezePlanes, kernel_size: 1);
            _expand1x1 = nn.Conv2d(squeezePlanes, expand1x1Planes, kernel_size: 1);
            _expand3x3 = nn.Conv2d(squeezePlanes, expand3x3Planes, kernel_size: 3, padding: 1);
            register_module("squeeze", _squeeze);
            register_module("squeeze_activation", nn.ReLU(inplace: true));
            register_module("expand1x1", _expand1x1);
            register_module("expand1x1_activation", nn.ReLU(inplace: true));
            register_module("expand3x3", _expand3x3);
            register_module("expand3x3_activation", nn.ReLU(inplace: true));
        }

        public override Tensor forward(Tensor input)
        {
            var x = nn.functional.relu(_squeeze.call(input), inplace: true);
            return cat([
                nn.functional.relu(_expand1x1.call(x), inplace: true),
                nn.functional.relu(_expand3x3.call(x), inplace: true),
            ], 1);
        }
    }
}
