using TorchSharp;
using static TorchSharp.torch;

namespace Ifcb.Models;

/// <summary>neuston's <c>NeustonModel.loss</c>.</summary>
public static class ClassifierLoss
{
    /// <summary>Weight of the auxiliary inception_v3 logits in the training loss.</summary>
    public const double AuxWeight = 0.4;

    /// <summary>
    /// Mean cross-entropy of the main logits, plus <see cref="AuxWeight"/> × cross-entropy of the auxiliary logits when
    /// the output has them (inception_v3 in training mode). No class weights, no label smoothing.
    /// </summary>
    /// <param name="targets">Class indices <c>[B]</c>, int64.</param>
    public static Tensor Compute(ModelOutput output, Tensor targets)
    {
        ArgumentNullException.ThrowIfNull(output);
        var loss = nn.functional.cross_entropy(output.Main, targets);
        return output.Aux is null ? loss : loss + AuxWeight * nn.functional.cross_entropy(output.Aux, targets);
    }
}
