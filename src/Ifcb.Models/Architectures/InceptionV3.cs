using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Ifcb.Models.Architectures;

/// <summary>
/// torchvision 0.14 <c>inception_v3</c> with <c>aux_logits=True</c>: <c>Conv2d_1a_3x3.conv/bn</c> … <c>Mixed_7c</c>,
/// <c>AuxLogits.conv0/conv1/fc</c>, <c>fc</c>. In training mode it returns main and auxiliary logits, in eval mode main only.
/// </summary>
public sealed class InceptionV3 : ClassifierNet
{
    private readonly BasicConv2d _conv2d1a, _conv2d2a, _conv2d2b, _conv2d3b, _conv2d4a;
    private readonly nn.Module<Tensor, Tensor>[] _mixed5to6;
    private readonly InceptionAux _auxLogits;
    private readonly nn.Module<Tensor, Tensor>[] _mixed7;
    private readonly Dropout _dropout;
    private readonly Linear _fc;

    /// <param name="transformInput">
    /// torchvision's <c>transform_input</c>: re-maps [0,1]-ish input to the ImageNet weights' expected range. neuston gets it
    /// exactly when the model is pretrained (torchvision forces it), so the zoo sets it from the pretrained flag.
    /// </param>
    public InceptionV3(int numClasses, bool transformInput, double dropout = 0.5) : base("inception_v3", numClasses, 299)
    {
        TransformInput = transformInput;
        _conv2d1a = Register("Conv2d_1a_3x3", new BasicConv2d(3, 32, 3, stride: 2));
        _conv2d2a = Register("Conv2d_2a_3x3", new BasicConv2d(32, 32, 3));
        _conv2d2b = Register("Conv2d_2b_3x3", new BasicConv2d(32, 64, 3, padding: 1));
        register_module("maxpool1", nn.MaxPool2d(kernel_size: 3, stride: 2));
        _conv2d3b = Register("Conv2d_3b_1x1", new BasicConv2d(64, 80, 1));
        _conv2d4a = Register("Conv2d_4a_3x3", new BasicConv2d(80, 192, 3));
        register_module("maxpool2", nn.MaxPool2d(kernel_size: 3, stride: 2));
        _mixed5to6 =
        [
            Register("Mixed_5b", new InceptionA(192, poolFeatures: 32)),
            Register("Mixed_5c", new InceptionA(256, poolFeatures: 64)),
            Register("Mixed_5d", new InceptionA(288, poolFeatures: 64)),
            Register("Mixed_6a", new InceptionB(288)),
            Register("Mixed_6b", new InceptionC(768, channels7x7: 128)),
            Register("Mixed_6c", new InceptionC(768, channels7x7: 160)),
            Register("Mixed_6d", new InceptionC(768, channels7x7: 160)),
            Register("Mixed_6e", new InceptionC(768, channels7x7: 192)),
        ];
        _auxLogits = Register("AuxLogits", new InceptionAux(768, numClasses));
        _mixed7 =
        [
            Register("Mixed_7a", new InceptionD(768)),
            Register("Mixed_7b", new InceptionE(1280)),
            Register("Mixed_7c", new InceptionE(2048)),
        ];
        register_module("avgpool", nn.AdaptiveAvgPool2d(new long[] { 1, 1 }));
        _dropout = Register("dropout", nn.Dropout(dropout));
        _fc = Register("fc", nn.Linear(2048, numClasses));

        // neuston (torchvision 0.8.2) initialises every Conv2d/Linear from scipy truncnorm(-2, 2, scale=0.1), i.e. cut at
        // ±2σ, and BN to 1/0. Both heads (fc, AuxLogits.fc) are then replaced and keep PyTorch's default init.
        using var _ = no_grad();
        foreach (var module in modules())
        {
            if (ReferenceEquals(module, _fc) || ReferenceEquals(module, _auxLogits.Head))
                continue;
            switch (module)
            {
                case Conv2d conv:
                    nn.init.trunc_normal_(conv.weight!, 0.0, 0.1, -0.2, 0.2);
                    break;
                case Linear linear:
                    nn.init.trunc_normal_(linear.weight!, 0.0, 0.1, -0.2, 0.2);
                    break;
                case BatchNorm2d bn:
                    nn.init.ones_(bn.weight!);
                    nn.init.zeros_(bn.bias!);
                    break;
            }
        }
    }

    public bool TransformInput { get; }

    public override IReadOnlyList<string> HeadKeys { get; } = ["fc.weight", "fc.bias", "AuxLogits.fc.weight", "AuxLogits.fc.bias"];

    public override ModelOutput forward(Tensor input)
    {
        var x = TransformInput ? ApplyTransformInput(input) : input;
        x = _conv2d1a.call(x);
        x = _conv2d2a.call(x);
        x = _conv2d2b.call(x);
        x = F.max_pool2d(x, kernel_size: 3, stride: 2);
        x = _conv2d3b.call(x);
        x = _conv2d4a.call(x);
        x = F.max_pool2d(x, kernel_size: 3, stride: 2);
        foreach (var block in _mixed5to6)
            x = block.call(x);
        var aux = training ? _auxLogits.call(x) : null;
        foreach (var block in _mixed7)
            x = block.call(x);
        x = F.adaptive_avg_pool2d(x, [1, 1]);
        x = _dropout.call(x).flatten(1);
        return new ModelOutput(_fc.call(x), aux);
    }

    /// <summary>Per-channel scale of torchvision's <c>_transform_input</c>: <c>std_c / 0.5</c> with ImageNet's std.</summary>
    internal static IReadOnlyList<double> TransformInputScale { get; } = [0.229 / 0.5, 0.224 / 0.5, 0.225 / 0.5];

    /// <summary>Per-channel shift of torchvision's <c>_transform_input</c>: <c>(mean_c - 0.5) / 0.5</c> with ImageNet's mean.</summary>
    internal static IReadOnlyList<double> TransformInputShift { get; } = [(0.485 - 0.5) / 0.5, (0.456 - 0.5) / 0.5, (0.406 - 0.5) / 0.5];

    /// <summary>torchvision's <c>_transform_input</c>: <c>x_c * scale_c + shift_c</c>.</summary>
    private static Tensor ApplyTransformInput(Tensor x) =>
        cat([.. Enumerable.Range(0, 3).Select(c => x[.., c].unsqueeze(1) * TransformInputScale[c] + TransformInputShift[c])], 1);

    private T Register<T>(string name, T module) where T : nn.Module
    {
        register_module(name, module);
        return module;
    }

    private static Tensor AvgPool3x3(Tensor x) => F.avg_pool2d(x, kernel_size: 3, stride: 1, padding: 1);

    internal sealed class InceptionA : ExplicitlyNamedModule
    {
        private readonly BasicConv2d _branch1x1, _branch5x5_1, _branch5x5_2, _branch3x3dbl_1, _branch3x3dbl_2, _branch3x3dbl_3, _branchPool;

        public InceptionA(long inChannels, long poolFeatures) : base(nameof(InceptionA))
        {
            _branch1x1 = new BasicConv2d(inChannels, 64, 1);
            _branch5x5_1 = new BasicConv2d(inChannels, 48, 1);
            _branch5x5_2 = new BasicConv2d(48, 64, 5, padding: 2);
            _branch3x3dbl_1 = new BasicConv2d(inChannels, 64, 1);
            _branch3x3dbl_2 = new BasicConv2d(64, 96, 3, padding: 1);
            _branch3x3dbl_3 = new BasicConv2d(96, 96, 3, padding: 1);
            _branchPool = new BasicConv2d(inChannels, poolFeatures, 1);
            register_module("branch1x1", _branch1x1);
            register_module("branch5x5_1", _branch5x5_1);
            register_module("branch5x5_2", _branch5x5_2);
            register_module("branch3x3dbl_1", _branch3x3dbl_1);
            register_module("branch3x3dbl_2", _branch3x3dbl_2);
            register_module("branch3x3dbl_3", _branch3x3dbl_3);
            register_module("branch_pool", _branchPool);
        }

        public override Tensor forward(Tensor x) => cat([
            _branch1x1.call(x),
            _branch5x5_2.call(_branch5x5_1.call(x)),
            _branch3x3dbl_3.call(_branch3x3dbl_2.call(_branch3x3dbl_1.call(x))),
            _branchPool.call(AvgPool3x3(x)),
        ], 1);
    }

    internal sealed class InceptionB : ExplicitlyNamedModule
    {
        private readonly BasicConv2d _branch3x3, _branch3x3dbl_1, _branch3x3dbl_2, _branch3x3dbl_3;

        public InceptionB(long inChannels) : base(nameof(InceptionB))
        {
            _branch3x3 = new BasicConv2d(inChannels, 384, 3, stride: 2);
            _branch3x3dbl_1 = new BasicConv2d(inChannels, 64, 1);
            _branch3x3dbl_2 = new BasicConv2d(64, 96, 3, padding: 1);
            _branch3x3dbl_3 = new BasicConv2d(96, 96, 3, stride: 2);
            register_module("branch3x3", _branch3x3);
            register_module("branch3x3dbl_1", _branch3x3dbl_1);
            register_module("branch3x3dbl_2", _branch3x3dbl_2);
            register_module("branch3x3dbl_3", _branch3x3dbl_3);
        }

        public override Tensor forward(Tensor x) => cat([
            _branch3x3.call(x),
            _branch3x3dbl_3.call(_branch3x3dbl_2.call(_branch3x3dbl_1.call(x))),
            F.max_pool2d(x, kernel_size: 3, stride: 2),
        ], 1);
    }

    internal sealed class InceptionC : ExplicitlyNamedModule
    {
        private readonly BasicConv2d _branch1x1, _branch7x7_1, _branch7x7_2, _branch7x7_3;
        private readonly BasicConv2d _branch7x7dbl_1, _branch7x7dbl_2, _branch7x7dbl_3, _branch7x7dbl_4, _branch7x7dbl_5, _branchPool;

        public InceptionC(long inChannels, long channels7x7) : base(nameof(InceptionC))
        {
            var c7 = channels7x7;
            _branch1x1 = new BasicConv2d(inChannels, 192, 1);
            _branch7x7_1 = new BasicConv2d(inChannels, c7, 1);
            _branch7x7_2 = BasicConv2d.Asymmetric(c7, c7, (1, 7), (0, 3));
            _branch7x7_3 = BasicConv2d.Asymmetric(c7, 192, (7, 1), (3, 0));
            _branch7x7dbl_1 = new BasicConv2d(inChannels, c7, 1);
            _branch7x7dbl_2 = BasicConv2d.Asymmetric(c7, c7, (7, 1), (3, 0));
            _branch7x7dbl_3 = BasicConv2d.Asymmetric(c7, c7, (1, 7), (0, 3));
            _branch7x7dbl_4 = BasicConv2d.Asymmetric(c7, c7, (7, 1), (3, 0));
            _branch7x7dbl_5 = BasicConv2d.Asymmetric(c7, 192, (1, 7), (0, 3));
            _branchPool = new BasicConv2d(inChannels, 192, 1);
            register_module("branch1x1", _branch1x1);
            register_module("branch7x7_1", _branch7x7_1);
            register_module("branch7x7_2", _branch7x7_2);
            register_module("branch7x7_3", _branch7x7_3);
            register_module("branch7x7dbl_1", _branch7x7dbl_1);
            register_module("branch7x7dbl_2", _branch7x7dbl_2);
            register_module("branch7x7dbl_3", _branch7x7dbl_3);
            register_module("branch7x7dbl_4", _branch7x7dbl_4);
            register_module("branch7x7dbl_5", _branch7x7dbl_5);
            register_module("branch_pool", _branchPool);
        }

        public override Tensor forward(Tensor x)
        {
            var b7 = _branch7x7_3.call(_branch7x7_2.call(_branch7x7_1.call(x)));
            var d = _branch7x7dbl_1.call(x);
            d = _branch7x7dbl_5.call(_branch7x7dbl_4.call(_branch7x7dbl_3.call(_branch7x7dbl_2.call(d))));
            return cat([_branch1x1.call(x), b7, d, _branchPool.call(AvgPool3x3(x))], 1);
        }
    }

    internal sealed class InceptionD : ExplicitlyNamedModule
    {
        private readonly BasicConv2d _branch3x3_1, _branch3x3_2, _branch7x7x3_1, _branch7x7x3_2, _branch7x7x3_3, _branch7x7x3_4;

        public InceptionD(long inChannels) : base(nameof(InceptionD))
        {
            _branch3x3_1 = new BasicConv2d(inChannels, 192, 1);
            _branch3x3_2 = new BasicConv2d(192, 320, 3, stride: 2);
            _branch7x7x3_1 = new BasicConv2d(inChannels, 192, 1);
            _branch7x7x3_2 = BasicConv2d.Asymmetric(192, 192, (1, 7), (0, 3));
            _branch7x7x3_3 = BasicConv2d.Asymmetric(192, 192, (7, 1), (3, 0));
            _branch7x7x3_4 = new BasicConv2d(192, 192, 3, stride: 2);
            register_module("branch3x3_1", _branch3x3_1);
            register_module("branch3x3_2", _branch3x3_2);
            register_module("branch7x7x3_1", _branch7x7x3_1);
            register_module("branch7x7x3_2", _branch7x7x3_2);
            register_module("branch7x7x3_3", _branch7x7x3_3);
            register_module("branch7x7x3_4", _branch7x7x3_4);
        }

        public override Tensor forward(Tensor x) => cat([
            _branch3x3_2.call(_branch3x3_1.call(x)),
            _branch7x7x3_4.call(_branch7x7x3_3.call(_branch7x7x3_2.call(_branch7x7x3_1.call(x)))),
            F.max_pool2d(x, kernel_size: 3, stride: 2),
        ], 1);
    }

    internal sealed class InceptionE : ExplicitlyNamedModule
    {
        private readonly BasicConv2d _branch1x1, _branch3x3_1, _branch3x3_2a, _branch3x3_2b;
        private readonly BasicConv2d _branch3x3dbl_1, _branch3x3dbl_2, _branch3x3dbl_3a, _branch3x3dbl_3b, _branchPool;

        public InceptionE(long inChannels) : base(nameof(InceptionE))
        {
            _branch1x1 = new BasicConv2d(inChannels, 320, 1);
            _branch3x3_1 = new BasicConv2d(inChannels, 384, 1);
            _branch3x3_2a = BasicConv2d.Asymmetric(384, 384, (1, 3), (0, 1));
            _branch3x3_2b = BasicConv2d.Asymmetric(384, 384, (3, 1), (1, 0));
            _branch3x3dbl_1 = new BasicConv2d(inChannels, 448, 1);
            _branch3x3dbl_2 = new BasicConv2d(448, 384, 3, padding: 1);
            _branch3x3dbl_3a = BasicConv2d.Asymmetric(384, 384, (1, 3), (0, 1));
            _branch3x3dbl_3b = BasicConv2d.Asymmetric(384, 384, (3, 1), (1, 0));
            _branchPool = new BasicConv2d(inChannels, 192, 1);
            register_module("branch1x1", _branch1x1);
            register_module("branch3x3_1", _branch3x3_1);
            register_module("branch3x3_2a", _branch3x3_2a);
            register_module("branch3x3_2b", _branch3x3_2b);
            register_module("branch3x3dbl_1", _branch3x3dbl_1);
            register_module("branch3x3dbl_2", _branch3x3dbl_2);
            register_module("branch3x3dbl_3a", _branch3x3dbl_3a);
            register_module("branch3x3dbl_3b", _branch3x3dbl_3b);
            register_module("branch_pool", _branchPool);
        }

        public override Tensor forward(Tensor x)
        {
            var b3 = _branch3x3_1.call(x);
            var d = _branch3x3dbl_2.call(_branch3x3dbl_1.call(x));
            return cat([
                _branch1x1.call(x),
                cat([_branch3x3_2a.call(b3), _branch3x3_2b.call(b3)], 1),
                cat([_branch3x3dbl_3a.call(d), _branch3x3dbl_3b.call(d)], 1),
                _branchPool.call(AvgPool3x3(x)),
            ], 1);
        }
    }

    internal sealed class InceptionAux : ExplicitlyNamedModule
    {
        private readonly BasicConv2d _conv0, _conv1;

        public InceptionAux(long inChannels, int numClasses) : base(nameof(InceptionAux))
        {
            _conv0 = new BasicConv2d(inChannels, 128, 1);
            _conv1 = new BasicConv2d(128, 768, 5);
            Head = nn.Linear(768, numClasses);
            register_module("conv0", _conv0);
            register_module("conv1", _conv1);
            register_module("fc", Head);
        }

        public Linear Head { get; }

        public override Tensor forward(Tensor input)
        {
            var x = F.avg_pool2d(input, kernel_size: 5, stride: 3);
            x = _conv1.call(_conv0.call(x));
            x = F.adaptive_avg_pool2d(x, [1, 1]).flatten(1);
            return Head.call(x);
        }
    }
}
