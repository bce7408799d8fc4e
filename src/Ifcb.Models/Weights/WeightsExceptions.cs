namespace Ifcb.Models.Weights;

/// <summary>Pretrained weights were asked for but the store has none for the architecture (a failed precondition).</summary>
public sealed class WeightsNotFoundException : Exception
{
    public WeightsNotFoundException(string architecture, string expectedLocation)
        : base($"No pretrained ImageNet weights for '{architecture}': expected {expectedLocation}. " +
               $"Import torchvision's file with `ifcb weights import {architecture} FILE`, or pass --untrain to train from random weights.")
    {
        Architecture = architecture;
        ExpectedLocation = expectedLocation;
    }

    public string Architecture { get; }

    public string ExpectedLocation { get; }
}

/// <summary>A weights file does not fit the architecture (wrong model, wrong class count, truncated file).</summary>
public sealed class WeightsMismatchException : Exception
{
    public WeightsMismatchException(string architecture, StateDictComparison comparison)
        : base($"The weights do not fit '{architecture}': {comparison.Describe()} " +
               $"Use torchvision's own {architecture} ImageNet state dict (torch.save(model.state_dict(), f)).")
    {
        Architecture = architecture;
        Comparison = comparison;
    }

    public string Architecture { get; }

    public StateDictComparison Comparison { get; }
}
