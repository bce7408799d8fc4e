using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ifcb.Models.Architectures;

/// <summary>torchvision 0.14 <c>alexnet</c>: <c>features.*</c>, <c>avgpool</c>, <c>classifier.{1,4,6}</c>.</summary>
public sealed class AlexNet : ClassifierNet
{
    private readonly Sequential _features;
    private readonly AdaptiveAvgPool2d _avgpool;
    private readonly Sequential _classifier;

    public AlexNet(int numClasses, double dropout = 0.5) : base("alexnet", numClasses, 224)
    {
        _features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size: 11, stride: 4, padding: 2),
            nn.ReLU(inplace: true),
            nn.MaxPool2d(kernel_size: 3, stride: 2),
            nn.Conv2d(64, 192, kernel_size: 5, padding: 2),
            nn.ReLU(inplace: true),
            nn.MaxPool2d(kernel_size: 3, stride: 2),
            nn.Conv2d(192, 384, kernel_size: 3, padding: 1),
            nn.ReLU(inplace: true),
            nn.Conv2d(384, 256, kernel_size: 3, padding: 1),
            nn.ReLU(inplace: true),
            nn.Conv2d(256, 256, kernel_size: 3, padding: 1),
            nn.ReLU(inplace: true),
            nn.MaxPool2d(kernel_size: 3, stride: 2));
        _avgpool = nn.AdaptiveAvgPool2d(new long[] { 6, 6 });
        // Index 6 is the layer neuston replaces with Linear(4096, N); torchvision keeps AlexNet at PyTorch's default init.
        _classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace: true),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace: true),
            nn.Linear(4096, numClasses));
        register_module("features", _features);
        register_module("avgpool", _avgpool);
        register_module("classifier", _classifier);
    }

    public override IReadOnlyList<string> HeadKeys { get; } = ["classifier.6.weight", "classifier.6.bias"];

    public override ModelOutput forward(Tensor input)
    {
        var x = _avgpool.call(_features.call(input));
        return new ModelOutput(_classifier.call(x.flatten(1)), null);
    }
}
