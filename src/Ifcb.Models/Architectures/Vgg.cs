using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ifcb.Models.Architectures;

/// <summary>
/// torchvision 0.14 VGG (<c>vgg11/13/16/19</c> and <c>_bn</c>): <c>features.*</c> numbered as in torchvision's
/// <c>make_layers</c>, <c>avgpool</c>, <c>classifier.{0,3,6}</c>.
/// </summary>
public sealed class Vgg : ClassifierNet
{
    private const int MaxPool = -1;

    private static readonly Dictionary<string, int[]> Configurations = new()
    {
        ["A"] = [64, MaxPool, 128, MaxPool, 256, 256, MaxPool, 512, 512, MaxPool, 512, 512, MaxPool],
        ["B"] = [64, 64, MaxPool, 128, 128, MaxPool, 256, 256, MaxPool, 512, 512, MaxPool, 512, 512, MaxPool],
        ["D"] = [64, 64, MaxPool, 128, 128, MaxPool, 256, 256, 256, MaxPool, 512, 512, 512, MaxPool, 512, 512, 512, MaxPool],
        ["E"] = [64, 64, MaxPool, 128, 128, MaxPool, 256, 256, 256, 256, MaxPool, 512, 512, 512, 512, MaxPool, 512, 512, 512, 512, MaxPool],
    };

    private readonly Sequential _features;
    private readonly AdaptiveAvgPool2d _avgpool;
    private readonly Sequential _classifier;

    private Vgg(string architecture, string configuration, bool batchNorm, int numClasses, double dropout = 0.5)
        : base(architecture, numClasses, 224)
    {
        var layers = new List<nn.Module<Tensor, Tensor>>();
        long inChannels = 3;
        foreach (var v in Configurations[configuration])
        {
            if (v == MaxPool)
            {
                layers.Add(nn.MaxPool2d(kernel_size: 2, stride: 2));
                continue;
            }
            layers.Add(nn.Conv2d(inChannels, v, kernel_size: 3, padding: 1));
            if (batchNorm)
                layers.Add(nn.BatchNorm2d(v));
            layers.Add(nn.ReLU(inplace: true));
            inChannels = v;
        }
        _features = nn.Sequential(layers);
        _avgpool = nn.AdaptiveAvgPool2d(new long[] { 7, 7 });
        var head = nn.Linear(4096, numClasses);
        _classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace: true),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace: true),
            nn.Dropout(dropout),
            head);
        register_module("features", _features);
        register_module("avgpool", _avgpool);
        register_module("classifier", _classifier);
        InitializeLikeTorchvision(head);
    }

    public static Vgg Vgg11(int numClasses) => new("vgg11", "A", false, numClasses);
    public static Vgg Vgg11Bn(int numClasses) => new("vgg11_bn", "A", true, numClasses);
    public static Vgg Vgg13(int numClasses) => new("vgg13", "B", false, numClasses);
    public static Vgg Vgg13Bn(int numClasses) => new("vgg13_bn", "B", true, numClasses);
    public static Vgg Vgg16(int numClasses) => new("vgg16", "D", false, numClasses);
    public static Vgg Vgg16Bn(int numClasses) => new("vgg16_bn", "D", true, numClasses);
    public static Vgg Vgg19(int numClasses) => new("vgg19", "E", false, numClasses);
    public static Vgg Vgg19Bn(int numClasses) => new("vgg19_bn", "E", true, numClasses);

    public override IReadOnlyList<string> HeadKeys { get; } = ["classifier.6.weight", "classifier.6.bias"];

    public override ModelOutput forward(Tensor input)
    {
        var x = _avgpool.call(_features.call(input));
        return new ModelOutput(_classifier.call(x.flatten(1)), null);
    }

    // torchvision's VGG init for training from scratch; the replaced head keeps PyTorch's default init as in neuston.
    private void InitializeLikeTorchvision(nn.Module head)
    {
        using var _ = no_grad();
        foreach (var module in modules())
        {
            if (ReferenceEquals(module, head))
                continue;
            switch (module)
            {
                case Conv2d conv:
                    nn.init.kaiming_normal_(conv.weight!, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);
                    nn.init.zeros_(conv.bias!);
                    break;
                case BatchNorm2d bn:
                    nn.init.ones_(bn.weight!);
                    nn.init.zeros_(bn.bias!);
                    break;
                case Linear linear:
                    nn.init.normal_(linear.weight!, 0, 0.01);
                    nn.init.zeros_(linear.bias!);
                    break;
            }
        }
    }
}
