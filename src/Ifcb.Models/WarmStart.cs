using Ifcb.Models.Checkpoints;
using static TorchSharp.torch;

namespace Ifcb.Models;

/// <summary>How a warm start maps the parent model's classes onto the new run's.</summary>
/// <param name="Kept">Classes in both, with their output row in the parent and in the new model.</param>
/// <param name="Added">New classes: their head rows start from PyTorch's default init.</param>
/// <param name="Dropped">Parent classes the new run does not train.</param>
public sealed record ClassMapping(IReadOnlyList<(string Class, int Parent, int Child)> Kept, IReadOnlyList<string> Added,
    IReadOnlyList<string> Dropped)
{
    /// <summary>Same classes in the same order: the parent's head is kept whole.</summary>
    public bool SameHead => Added.Count == 0 && Dropped.Count == 0 && Kept.All(k => k.Parent == k.Child);

    /// <summary>By class name (ordinal).</summary>
    public static ClassMapping Between(IReadOnlyList<string> parent, IReadOnlyList<string> child)
    {
        ArgumentNullException.ThrowIfNull(parent);
        ArgumentNullException.ThrowIfNull(child);
        var parentIndex = parent.Select((name, index) => (name, index)).ToDictionary(p => p.name, p => p.index, StringComparer.Ordinal);
        var kept = child.Select((name, index) => (name, index))
            .Where(c => parentIndex.ContainsKey(c.name))
            .Select(c => (c.name, parentIndex[c.name], c.index)).ToList();
        return new ClassMapping(kept, [.. child.Where(c => !parentIndex.ContainsKey(c))],
            [.. parent.Where(p => !child.Contains(p, StringComparer.Ordinal))]);
    }
}

/// <summary>
/// Fine-tuning from a trained model (<c>ifcb train --from</c>) and freezing its body (<c>--freeze features</c>).
/// </summary>
public static class WarmStart
{
    /// <summary>
    /// A model for <paramref name="classes"/> that starts from <paramref name="parent"/>: every body tensor (BatchNorm
    /// running statistics included) is the parent's; with the same classes in the same order the head is the parent's too,
    /// otherwise a fresh head keeps the parent's rows (weights and bias) of every class both have, by name, and new
    /// classes start from PyTorch's default init. The parent's layout (inception_v3's transform_input) is kept.
    /// </summary>
    /// <exception cref="ArgumentException">The parent is another architecture.</exception>
    public static (ClassifierNet Model, ClassMapping Mapping) From(LoadedCheckpoint parent, string architecture,
        IReadOnlyList<string> classes)
    {
        ArgumentNullException.ThrowIfNull(parent);
        ArgumentNullException.ThrowIfNull(classes);
        if (parent.Hparams.Architecture != architecture)
        {
            throw new ArgumentException(
                $"--from is a {parent.Hparams.Architecture} model ({parent.Hparams.ModelId}); it cannot start a {architecture} run. " +
                $"Train {parent.Hparams.Architecture}, or start {architecture} from ImageNet or random weights.", nameof(architecture));
        }
        var mapping = ClassMapping.Between(parent.Hparams.Classes, classes);
        var model = ModelZoo.Create(architecture, classes.Count, parent.Hparams.Pretrained);
        var head = new HashSet<string>(model.HeadKeys, StringComparer.Ordinal);
        var source = parent.Model.state_dict();
        using var noGrad = no_grad();
        foreach (var (key, target) in model.state_dict())
        {
            var from = source[key];
            if (!head.Contains(key) || mapping.SameHead)
            {
                target.copy_(from);
                continue;
            }
            // Head tensors have one row per class (Linear weight/bias, squeezenet's 1×1 conv): copy the kept rows.
            foreach (var (_, parentRow, childRow) in mapping.Kept)
                target[childRow].copy_(from[parentRow]);
        }
        return (model, mapping);
    }

    /// <summary>
    /// Freezes (or unfreezes) everything but the head, by torchvision's module names: body parameters stop (or resume)
    /// receiving gradients, so the optimiser leaves them as they are. BatchNorm running statistics still follow the
    /// training batches, as in PyTorch when only <c>requires_grad</c> is switched off.
    /// </summary>
    /// <returns>The number of parameters frozen (0 when unfreezing).</returns>
    public static long SetBodyFrozen(ClassifierNet model, bool frozen)
    {
        ArgumentNullException.ThrowIfNull(model);
        var head = new HashSet<string>(model.HeadKeys, StringComparer.Ordinal);
        long count = 0;
        foreach (var (name, parameter) in model.named_parameters())
        {
            if (head.Contains(name))
                continue;
            parameter.requires_grad = !frozen;
            if (frozen)
                count += parameter.numel();
        }
        return count;
    }
}
