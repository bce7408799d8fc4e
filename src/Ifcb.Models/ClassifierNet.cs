using static TorchSharp.torch;

namespace Ifcb.Models;

/// <summary>
/// What a classifier returns: the main logits <c>[B, N]</c> and, only for inception_v3 in training mode, the auxiliary
/// logits <c>[B, N]</c> (neuston's <c>InceptionOutputs(logits, aux)</c>).
/// </summary>
public sealed record ModelOutput(Tensor Main, Tensor? Aux);

/// <summary>
/// Base of every zoo architecture. Subclasses register their submodules at the root under torchvision's names, so
/// <c>state_dict()</c> keys are exactly torchvision's (no wrapper prefix): that is how ImageNet weights load and how an
/// exported <c>.pth</c> loads back into torchvision with <c>strict=True</c>.
/// </summary>
public abstract class ClassifierNet : nn.Module<Tensor, ModelOutput>
{
    protected ClassifierNet(string architecture, int numClasses, int inputSize) : base(architecture)
    {
        if (numClasses < 1)
            throw new ArgumentOutOfRangeException(nameof(numClasses), numClasses, "A classifier needs at least one class.");
        Architecture = architecture;
        NumClasses = numClasses;
        InputSize = inputSize;
    }

    /// <summary>The zoo name this model was created with (e.g. <c>resnet18</c>, <c>squeezenet</c>).</summary>
    public string Architecture { get; }

    public int NumClasses { get; }

    /// <summary>Square input side the model is trained and run at (299 for the inceptions, 224 otherwise).</summary>
    public int InputSize { get; }

    /// <summary>
    /// State-dict keys of the layers neuston replaces for N classes. They are never taken from ImageNet weights: the new
    /// head keeps PyTorch's default initialisation, as in neuston.
    /// </summary>
    public abstract IReadOnlyList<string> HeadKeys { get; }

    /// <summary>
    /// Main logits only, whatever the mode. The pass runs in a dispose scope of its own, so intermediate activations are
    /// freed when it ends (or, under autograd, as soon as backward has used them) rather than when the caller's scope ends.
    /// </summary>
    public Tensor Logits(Tensor input)
    {
        using var scope = NewDisposeScope();
        return call(input).Main.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Children are registered by name (torchvision's), never by reflection over fields: TorchSharp's field-based
    /// registration would add them a second time under their C# names when this model is nested in another module.
    /// </summary>
    protected override void RegisterComponents()
    {
    }
}
