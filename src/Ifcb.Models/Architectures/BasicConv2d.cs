using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ifcb.Models.Architectures;

/// <summary>
/// The inceptions' conv → BatchNorm(eps 0.001) → ReLU unit, with torchvision's (and Cadene's inception_v4) state-dict
/// keys <c>conv.weight</c> and <c>bn.*</c>. The ReLU is functional: it has no state, so it is not a child module.
/// </summary>
internal sealed class BasicConv2d : ExplicitlyNamedModule
{
    private readonly Conv2d _conv;
    private readonly BatchNorm2d _bn;

    public BasicConv2d(long inChannels, long outChannels, long kernelSize, long stride = 1, long padding = 0)
        : this(inChannels, outChannels, (kernelSize, kernelSize), (stride, stride), (padding, padding))
    {
    }

    public BasicConv2d(long inChannels, long outChannels, (long, long) kernelSize, (long, long) stride, (long, long) padding)
        : base(nameof(BasicConv2d))
    {
        _conv = nn.Conv2d(inChannels, outChannels, kernel_size: kernelSize, stride: stride, padding: padding, bias: false);
        _bn = nn.BatchNorm2d(outChannels, eps: 0.001);
        register_module("conv", _conv);
        register_module("bn", _bn);
    }

    /// <summary>A stride-1 unit with a non-square kernel (1×7, 7×1, …) and matching padding.</summary>
    public static BasicConv2d Asymmetric(long inChannels, long outChannels, (long, long) kernelSize, (long, long) padding) =>
        new(inChannels, outChannels, kernelSize, (1, 1), padding);

    public override Tensor forward(Tensor input) => nn.functional.relu(_bn.call(_conv.call(input)), inplace: true);
}
