using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ifcb.Models.Architectures;

/// <summary>
/// torchvision 0.14 DenseNet-BC (<c>densenet121/161/169/201</c>):
/// <c>features.conv0/norm0/denseblock{k}.denselayer{i}.norm1/conv1/norm2/conv2</c>,
/// <c>features.transition{k}.norm/conv</c>, <c>features.norm5</c>, <c>classifier</c>.
/// </summary>
public sealed class DenseNet : ClassifierNet
{
    private readonly Sequential _features;
    private readonly Linear _classifier;

    private DenseNet(string architecture, int growthRate, int[] blockConfig, int numInitFeatures, int numClasses, int bnSize = 4)
        : base(architecture, numClasses, 224)
    {
        var features = new List<(string, nn.Module<Tensor, Tensor>)>
        {
            ("conv0", nn.Conv2d(3, numInitFeatures, kernel_size: 7, stride: 2, padding: 3, bias: false)),
            ("norm0", nn.BatchNorm2d(numInitFeatures)),
            ("relu0", nn.ReLU(inplace: true)),
            ("pool0", nn.MaxPool2d(kernel_size: 3, stride: 2, padding: 1)),
        };
        long numFeatures = numInitFeatures;
        for (var i = 0; i < blockConfig.Length; i++)
        {
            features.Add(($"denseblock{i + 1}", new DenseBlock(blockConfig[i], numFeatures, bnSize, growthRate)));
            numFeatures += blockConfig[i] * growthRate;
            if (i != blockConfig.Length - 1)
            {
                features.Add(($"transition{i + 1}", nn.Sequential(
                    ("norm", nn.BatchNorm2d(numFeatures)),
                    ("relu", nn.ReLU(inplace: true)),
                    ("conv", nn.Conv2d(numFeatures, numFeatures / 2, kernel_size: 1, stride: 1, bias: false)),
                    ("pool", nn.AvgPool2d(kernel_size: 2, stride: 2)))));
                numFeatures /= 2;
            }
        }
        features.Add(("norm5", nn.BatchNorm2d(numFeatures)));
        _features = nn.Sequential(features);
        _classifier = nn.Linear(numFeatures, numClasses);
        register_module("features", _features);
        register_module("classifier", _classifier);

        // torchvision's DenseNet init; the classifier keeps PyTorch's default init, as after neuston's head replacement.
        using var _ = no_grad();
        foreach (var module in modules())
        {
            switch (module)
            {
                case Conv2d conv:
                    nn.init.kaiming_normal_(conv.weight!);
                    break;
                case BatchNorm2d bn:
                    nn.init.ones_(bn.weight!);
                    nn.init.zeros_(bn.bias!);
                    break;
            }
        }
    }

    public static DenseNet DenseNet121(int numClasses) => new("densenet121", 32, [6, 12, 24, 16], 64, numClasses);
    public static DenseNet DenseNet161(int numClasses) => new("densenet161", 48, [6, 12, 36, 24], 96, numClasses);
    public static DenseNet DenseNet169(int numClasses) => new("densenet169", 32, [6, 12, 32, 32], 64, numClasses);
    public static DenseNet DenseNet201(int numClasses) => new("densenet201", 32, [6, 12, 48, 32], 64, numClasses);

    public override IReadOnlyList<string> HeadKeys { get; } = ["classifier.weight", "classifier.bias"];

    public override ModelOutput forward(Tensor input)
    {
        var x = nn.functional.relu(_features.call(input), inplace: true);
        x = nn.functional.adaptive_avg_pool2d(x, [1, 1]).flatten(1);
        return new ModelOutput(_classifier.call(x), null);
    }

    internal sealed class DenseLayer : ExplicitlyNamedModule
    {
        private readonly BatchNorm2d _norm1, _norm2;
        private readonly Conv2d _conv1, _conv2;

        public DenseLayer(long numInputFeatures, long growthRate, long bnSize) : base(nameof(DenseLayer))
        {
            _norm1 = nn.BatchNorm2d(numInputFeatures);
            _conv1 = nn.Conv2d(numInputFeatures, bnSize * growthRate, kernel_size: 1, stride: 1, bias: false);
            _norm2 = nn.BatchNorm2d(bnSize * growthRate);
            _conv2 = nn.Conv2d(bnSize * growthRate, growthRate, kernel_size: 3, stride: 1, padding: 1, bias: false);
            register_module("norm1", _norm1);
            register_module("relu1", nn.ReLU(inplace: true));
            register_module("conv1", _conv1);
            register_module("norm2", _norm2);
            register_module("relu2", nn.ReLU(inplace: true));
            register_module("conv2", _conv2);
        }

        /// <param name="input">All previous feature maps of the block, already concatenated.</param>
        public override Tensor forward(Tensor input)
        {
            var bottleneck = _conv1.call(nn.functional.relu(_norm1.call(input), inplace: true));
            return _conv2.call(nn.functional.relu(_norm2.call(bottleneck), inplace: true));
        }
    }

    internal sealed class DenseBlock : ExplicitlyNamedModule
    {
        private readonly DenseLayer[] _layers;

        public DenseBlock(int numLayers, long numInputFeatures, long bnSize, long growthRate) : base(nameof(DenseBlock))
        {
            _layers = new DenseLayer[numLayers];
            for (var i = 0; i < numLayers; i++)
            {
                _layers[i] = new DenseLayer(numInputFeatures + i * growthRate, growthRate, bnSize);
                register_module($"denselayer{i + 1}", _layers[i]);
            }
        }

        public override Tensor forward(Tensor input)
        {
            var features = new List<Tensor> { input };
            foreach (var layer in _layers)
                features.Add(layer.call(cat(features, 1)));
            return cat(features, 1);
        }
    }
}
