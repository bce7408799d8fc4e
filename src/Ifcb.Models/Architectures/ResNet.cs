using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ifcb.Models.Architectures;

/// <summary>
/// torchvision 0.14 ResNet (<c>resnet18/34/50/101/152</c>): <c>conv1</c>, <c>bn1</c>, <c>layer{1..4}.{i}.conv1/bn1/...</c>,
/// <c>layer{k}.0.downsample.{0,1}</c>, <c>fc</c>.
/// </summary>
public sealed class ResNet : ClassifierNet
{
    private readonly Conv2d _conv1;
    private readonly BatchNorm2d _bn1;
    private readonly MaxPool2d _maxpool;
    private readonly Sequential[] _layers;
    private readonly AdaptiveAvgPool2d _avgpool;
    private readonly Linear _fc;

    private ResNet(string architecture, bool bottleneck, int[] blocks, int numClasses) : base(architecture, numClasses, 224)
    {
        var expansion = bottleneck ? 4 : 1;
        _conv1 = nn.Conv2d(3, 64, kernel_size: 7, stride: 2, padding: 3, bias: false);
        _bn1 = nn.BatchNorm2d(64);
        _maxpool = nn.MaxPool2d(kernel_size: 3, stride: 2, padding: 1);
        register_module("conv1", _conv1);
        register_module("bn1", _bn1);
        register_module("relu", nn.ReLU(inplace: true));
        register_module("maxpool", _maxpool);

        long inplanes = 64;
        _layers = new Sequential[4];
        int[] planes = [64, 128, 256, 512];
        for (var stage = 0; stage < 4; stage++)
        {
            var stride = stage == 0 ? 1 : 2;
            var stageBlocks = new List<nn.Module<Tensor, Tensor>>();
            for (var b = 0; b < blocks[stage]; b++)
            {
                var blockStride = b == 0 ? stride : 1;
                Sequential? downsample = null;
                if (b == 0 && (stride != 1 || inplanes != planes[stage] * expansion))
                    downsample = nn.Sequential(
                        nn.Conv2d(inplanes, planes[stage] * expansion, kernel_size: 1, stride: blockStride, bias: false),
                        nn.BatchNorm2d(planes[stage] * expansion));
                stageBlocks.Add(bottleneck
                    ? new Bottleneck(inplanes, planes[stage], blockStride, downsample)
                    : new BasicBlock(inplanes, planes[stage], blockStride, downsample));
                inplanes = planes[stage] * expansion;
            }
            _layers[stage] = nn.Sequential(stageBlocks);
            register_module($"layer{stage + 1}", _layers[stage]);
        }
        _avgpool = nn.AdaptiveAvgPool2d(new long[] { 1, 1 });
        _fc = nn.Linear(512 * expansion, numClasses);
        register_module("avgpool", _avgpool);
        register_module("fc", _fc);

        // torchvision's ResNet init; fc keeps PyTorch's default init (torchvision does not touch it either).
        using var _ = no_grad();
        foreach (var module in modules())
        {
            switch (module)
            {
                case Conv2d conv:
                    nn.init.kaiming_normal_(conv.weight!, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);
                    break;
                case BatchNorm2d bn:
                    nn.init.ones_(bn.weight!);
                    nn.init.zeros_(bn.bias!);
                    break;
            }
        }
    }

    public static ResNet ResNet18(int numClasses) => new("resnet18", false, [2, 2, 2, 2], numClasses);
    public static ResNet ResNet34(int numClasses) => new("resnet34", false, [3, 4, 6, 3], numClasses);
    public static ResNet ResNet50(int numClasses) => new("resnet50", true, [3, 4, 6, 3], numClasses);
    public static ResNet ResNet101(int numClasses) => new("resnet101", true, [3, 4, 23, 3], numClasses);
    public static ResNet ResNet152(int numClasses) => new("resnet152", true, [3, 8, 36, 3], numClasses);

    public override IReadOnlyList<string> HeadKeys { get; } = ["fc.weight", "fc.bias"];

    public override ModelOutput forward(Tensor input)
    {
        var x = _maxpool.call(nn.functional.relu(_bn1.call(_conv1.call(input)), inplace: true));
        foreach (var layer in _layers)
            x = layer.call(x);
        x = _avgpool.call(x).flatten(1);
        return new ModelOutput(_fc.call(x), null);
    }

    internal sealed class BasicBlock : ExplicitlyNamedModule
    {
        private readonly Conv2d _conv1, _conv2;
        private readonly BatchNorm2d _bn1, _bn2;
        private readonly Sequential? _downsample;

        public BasicBlock(long inplanes, long planes, long stride, Sequential? downsample) : base(nameof(BasicBlock))
        {
            _conv1 = nn.Conv2d(inplanes, planes, kernel_size: 3, stride: stride, padding: 1, bias: false);
            _bn1 = nn.BatchNorm2d(planes);
            _conv2 = nn.Conv2d(planes, planes, kernel_size: 3, stride: 1, padding: 1, bias: false);
            _bn2 = nn.BatchNorm2d(planes);
            _downsample = downsample;
            register_module("conv1", _conv1);
            register_module("bn1", _bn1);
            register_module("relu", nn.ReLU(inplace: true));
            register_module("conv2", _conv2);
            register_module("bn2", _bn2);
            if (downsample is not null)
                register_module("downsample", downsample);
        }

        public override Tensor forward(Tensor input)
        {
            var identity = _downsample is null ? input : _downsample.call(input);
            var x = nn.functional.relu(_bn1.call(_conv1.call(input)), inplace: true);
            x = _bn2.call(_conv2.call(x));
            return nn.functional.relu(x.add_(identity), inplace: true);
        }
    }

    internal sealed class Bottleneck : ExplicitlyNamedModule
    {
        private readonly Conv2d _conv1, _conv2, _conv3;
        private readonly BatchNorm2d _bn1, _bn2, _bn3;
        private readonly Sequential? _downsample;

        public Bottleneck(long inplanes, long planes, long stride, Sequential? downsample) : base(nameof(Bottleneck))
        {
            _conv1 = nn.Conv2d(inplanes, planes, kernel_size: 1, bias: false);
            _bn1 = nn.BatchNorm2d(planes);
            // torchvision puts the stride on the 3x3 convolution (ResNet v1.5).
            _conv2 = nn.Conv2d(planes, planes, kernel_size: 3, stride: stride, padding: 1, bias: false);
            _bn2 = nn.BatchNorm2d(planes);
            _conv3 = nn.Conv2d(planes, planes * 4, kernel_size: 1, bias: false);
            _bn3 = nn.BatchNorm2d(planes * 4);
            _downsample = downsample;
            register_module("conv1", _conv1);
            register_module("bn1", _bn1);
            register_module("conv2", _conv2);
            register_module("bn2", _bn2);
            register_module("conv3", _conv3);
            register_module("bn3", _bn3);
            register_module("relu", nn.ReLU(inplace: true));
            if (downsample is not null)
                register_module("downsample", downsample);
        }

        public override Tensor forward(Tensor input)
        {
            var identity = _downsample is null ? input : _downsample.call(input);
            var x = nn.functional.relu(_bn1.call(_conv1.call(input)), inplace: true);
            x = nn.functional.relu(_bn2.call(_conv2.call(x)), inplace: true);
            x = _bn3.call(_conv3.call(x));
            return nn.functional.relu(x.add_(identity), inplace: true);
        }
    }
}
