using static TorchSharp.torch;

namespace Ifcb.Models.Architectures;

/// <summary>
/// Base of every block inside the zoo's models. Blocks name their children with <c>register_module</c> so that state-dict
/// keys are torchvision's; TorchSharp's <c>register_module</c> would otherwise also run <c>RegisterComponents</c> on the
/// child, which adds every field a second time under its C# name (e.g. <c>_conv.weight</c> beside <c>conv.weight</c>).
/// </summary>
internal abstract class ExplicitlyNamedModule(string name) : nn.Module<Tensor, Tensor>(name)
{
    protected override void RegisterComponents()
    {
    }
}
