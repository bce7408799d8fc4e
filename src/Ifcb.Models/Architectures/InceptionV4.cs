using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Ifcb.Models.Architectures;

/// <summary>
/// Inception-v4 in the layout of Cadene's <c>pretrainedmodels</c> (which neuston's dev branch vendors): <c>features.{0..21}</c>
/// and <c>last_linear</c> = Linear(1536, N). Input 299. PyTorch default init, as Cadene's untrained constructor.
/// The logits average-pool over the whole final feature map, so other input sizes work too.
/// </summary>
public sealed class InceptionV4 : ClassifierNet
{
    private readonly Sequential _features;
    private readonly Linear _lastLinear;

    public InceptionV4(int numClasses) : base("inception_v4", numClasses, 299)
    {
        _features = nn.Sequential(
            new BasicConv2d(3, 32, 3, stride: 2),
            new BasicConv2d(32, 32, 3),
            new BasicConv2d(32, 64, 3, padding: 1),
            new Mixed3a(),
            new Mixed4a(),
            new Mixed5a(),
            new InceptionA(), new InceptionA(), new InceptionA(), new InceptionA(),
            new ReductionA(),
            new InceptionB(), new InceptionB(), new InceptionB(), new InceptionB(), new InceptionB(), new InceptionB(), new InceptionB(),
            new ReductionB(),
            new InceptionC(), new InceptionC(), new InceptionC());
        _lastLinear = nn.Linear(1536, numClasses);
        register_module("features", _features);
        register_module("last_linear", _lastLinear);
    }

    public override IReadOnlyList<string> HeadKeys { get; } = ["last_linear.weight", "last_linear.bias"];

    public override ModelOutput forward(Tensor input)
    {
        var x = _features.call(input);
        // neuston's dev logits(): average over the full feature map (8×8 at 299).
        x = F.avg_pool2d(x, kernel_size: [x.shape[2], x.shape[3]], count_include_pad: false).flatten(1);
        return new ModelOutput(_lastLinear.call(x), null);
    }

    private static Sequential Chain(params nn.Module<Tensor, Tensor>[] modules) => nn.Sequential(modules);

    private static AvgPool2d AvgPool3x3() => nn.AvgPool2d(kernel_size: 3, stride: 1, padding: 1, count_include_pad: false);

    /// <summary>
    /// A block whose branches all read the input and are concatenated on channels, in registration order (which the ONNX
    /// export relies on: it concatenates the named children in that order).
    /// </summary>
    internal abstract class ParallelBranches : ExplicitlyNamedModule
    {
        private readonly List<nn.Module<Tensor, Tensor>> _branches = [];

        protected ParallelBranches(string name) : base(name)
        {
        }

        protected void Branch(string name, nn.Module<Tensor, Tensor> branch)
        {
            register_module(name, branch);
            _branches.Add(branch);
        }

        public override Tensor forward(Tensor input) => cat(_branches.Select(b => b.call(input)).ToList(), 1);
    }

    internal sealed class Mixed3a : ParallelBranches
    {
        public Mixed3a() : base(nameof(Mixed3a))
        {
            Branch("maxpool", nn.MaxPool2d(kernel_size: 3, stride: 2));
            Branch("conv", new BasicConv2d(64, 96, 3, stride: 2));
        }
    }

    internal sealed class Mixed4a : ParallelBranches
    {
        public Mixed4a() : base(nameof(Mixed4a))
        {
            Branch("branch0", Chain(new BasicConv2d(160, 64, 1), new BasicConv2d(64, 96, 3)));
            Branch("branch1", Chain(
                new BasicConv2d(160, 64, 1),
                BasicConv2d.Asymmetric(64, 64, (1, 7), (0, 3)),
                BasicConv2d.Asymmetric(64, 64, (7, 1), (3, 0)),
                new BasicConv2d(64, 96, 3)));
        }
    }

    internal sealed class Mixed5a : ParallelBranches
    {
        public Mixed5a() : base(nameof(Mixed5a))
        {
            Branch("conv", new BasicConv2d(192, 192, 3, stride: 2));
            Branch("maxpool", nn.MaxPool2d(kernel_size: 3, stride: 2));
        }
    }

    internal sealed class InceptionA : ParallelBranches
    {
        public InceptionA() : base(nameof(InceptionA))
        {
            Branch("branch0", new BasicConv2d(384, 96, 1));
            Branch("branch1", Chain(new BasicConv2d(384, 64, 1), new BasicConv2d(64, 96, 3, padding: 1)));
            Branch("branch2", Chain(
                new BasicConv2d(384, 64, 1),
                new BasicConv2d(64, 96, 3, padding: 1),
                new BasicConv2d(96, 96, 3, padding: 1)));
            Branch("branch3", Chain(AvgPool3x3(), new BasicConv2d(384, 96, 1)));
        }
    }

    internal sealed class ReductionA : ParallelBranches
    {
        public ReductionA() : base(nameof(ReductionA))
        {
            Branch("branch0", new BasicConv2d(384, 384, 3, stride: 2));
            Branch("branch1", Chain(
                new BasicConv2d(384, 192, 1),
                new BasicConv2d(192, 224, 3, padding: 1),
                new BasicConv2d(224, 256, 3, stride: 2)));
            Branch("branch2", nn.MaxPool2d(kernel_size: 3, stride: 2));
        }
    }

    internal sealed class InceptionB : ParallelBranches
    {
        public InceptionB() : base(nameof(InceptionB))
        {
            Branch("branch0", new BasicConv2d(1024, 384, 1));
            Branch("branch1", Chain(
                new BasicConv2d(1024, 192, 1),
                BasicConv2d.Asymmetric(192, 224, (1, 7), (0, 3)),
                BasicConv2d.Asymmetric(224, 256, (7, 1), (3, 0))));
            Branch("branch2", Chain(
                new BasicConv2d(1024, 192, 1),
                BasicConv2d.Asymmetric(192, 192, (7, 1), (3, 0)),
                BasicConv2d.Asymmetric(192, 224, (1, 7), (0, 3)),
                BasicConv2d.Asymmetric(224, 224, (7, 1), (3, 0)),
                BasicConv2d.Asymmetric(224, 256, (1, 7), (0, 3))));
            Branch("branch3", Chain(AvgPool3x3(), new BasicConv2d(1024, 128, 1)));
        }
    }

    internal sealed class ReductionB : ParallelBranches
    {
        public ReductionB() : base(nameof(ReductionB))
        {
            Branch("branch0", Chain(new BasicConv2d(1024, 192, 1), new BasicConv2d(192, 192, 3, stride: 2)));
            Branch("branch1", Chain(
                new BasicConv2d(1024, 256, 1),
                BasicConv2d.Asymmetric(256, 256, (1, 7), (0, 3)),
                BasicConv2d.Asymmetric(256, 320, (7, 1), (3, 0)),
                new BasicConv2d(320, 320, 3, stride: 2)));
            Branch("branch2", nn.MaxPool2d(kernel_size: 3, stride: 2));
        }
    }

    internal sealed class InceptionC : ExplicitlyNamedModule
    {
        private readonly BasicConv2d _branch0, _branch1_0, _branch1_1a, _branch1_1b;
        private readonly BasicConv2d _branch2_0, _branch2_1, _branch2_2, _branch2_3a, _branch2_3b;
        private readonly Sequential _branch3;

        public InceptionC() : base(nameof(InceptionC))
        {
            _branch0 = new BasicConv2d(1536, 256, 1);
            _branch1_0 = new BasicConv2d(1536, 384, 1);
            _branch1_1a = BasicConv2d.Asymmetric(384, 256, (1, 3), (0, 1));
            _branch1_1b = BasicConv2d.Asymmetric(384, 256, (3, 1), (1, 0));
            _branch2_0 = new BasicConv2d(1536, 384, 1);
            _branch2_1 = BasicConv2d.Asymmetric(384, 448, (3, 1), (1, 0));
            _branch2_2 = BasicConv2d.Asymmetric(448, 512, (1, 3), (0, 1));
            _branch2_3a = BasicConv2d.Asymmetric(512, 256, (1, 3), (0, 1));
            _branch2_3b = BasicConv2d.Asymmetric(512, 256, (3, 1), (1, 0));
            _branch3 = Chain(AvgPool3x3(), new BasicConv2d(1536, 256, 1));
            register_module("branch0", _branch0);
            register_module("branch1_0", _branch1_0);
            register_module("branch1_1a", _branch1_1a);
            register_module("branch1_1b", _branch1_1b);
            register_module("branch2_0", _branch2_0);
            register_module("branch2_1", _branch2_1);
            register_module("branch2_2", _branch2_2);
            register_module("branch2_3a", _branch2_3a);
            register_module("branch2_3b", _branch2_3b);
            register_module("branch3", _branch3);
        }

        public override Tensor forward(Tensor x)
        {
            var x1 = _branch1_0.call(x);
            var x2 = _branch2_2.call(_branch2_1.call(_branch2_0.call(x)));
            return cat([
                _branch0.call(x),
                cat([_branch1_1a.call(x1), _branch1_1b.call(x1)], 1),
                cat([_branch2_3a.call(x2), _branch2_3b.call(x2)], 1),
                _branch3.call(x),
            ], 1);
        }
    }
}
