namespace Ifcb.Contracts;

/// <summary>
/// neuston_net's defaults that every part of the platform uses when a client leaves a value out (input sizes are
/// per architecture, in <c>Ifcb.Models.ModelZoo</c>).
/// </summary>
public static class Defaults
{
    /// <summary>Images per batch for training, RUN and the neuston norm-stats estimator (neuston's <c>--batch</c>, 108).</summary>
    public const int BatchSize = 108;

}
