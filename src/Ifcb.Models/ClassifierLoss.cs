using static TorchSharp.torch;

namespace Ifcb.Models;

/// <summary>neuston's <c>NeustonModel.loss</c>.</summary>
public static class ClassifierLoss
{
    /// <summary>Weight of the auxiliary inception_v3 logits in the training loss.</summary>
    public const double AuxWeight = 0.4;

    /// <summary>
    /// Mean cross-entropy of the main logits, plus <see cref="AuxWeight"/> × cross-entropy of the auxiliary logits when
    /// the output has them (inception_v3 in training mode). No label smoothing. With <paramref name="classWeights"/>
    /// both terms are <c>torch.nn.CrossEntropyLoss(weight=classWeights)</c>: the weighted mean Σ w[y]·loss / Σ w[y].
    /// </summary>
    /// <param name="targets">Class indices <c>[B]</c>, int64.</param>
    /// <param name="classWeights">One float32 weight per class, on the logits' device; null weighs every class 1.</param>
    public static Tensor Compute(ModelOutput output, Tensor targets, Tensor? classWeights = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        var loss = nn.functional.cross_entropy(output.Main, targets, classWeights);
        return output.Aux is null ? loss : loss + AuxWeight * nn.functional.cross_entropy(output.Aux, targets, classWeights);
    }

    /// <summary>
    /// Forward pass and <see cref="Compute(ModelOutput, Tensor, Tensor?)"/> in a dispose scope of their own; only the loss leaves
    /// it. Call <c>backward()</c> on the result. Releasing the C# handles of the intermediate activations before
    /// backward lets autograd free each saved activation as soon as its gradient has been computed, so backward reuses
    /// that memory instead of growing the heap; with every handle held until the step's scope ended, resnet18's backward
    /// took 1.5–1.8× as long (bench/Ifcb.Models.Bench).
    /// </summary>
    public static Tensor ForwardLoss(ClassifierNet model, Tensor input, Tensor targets, Tensor? classWeights = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var scope = NewDisposeScope();
        return Compute(model.call(input), targets, classWeights).MoveToOuterDisposeScope();
    }
}
