using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using Ifcb.Platform;
using Ifcb.Platform.Checkpoints;

namespace Ifcb.Registry.Engine;

/// <summary>
/// Compares what a registration declares with what its checkpoint's hparams.json says, so registry metadata can be
/// trusted without loading the model: arch, classes in output order, resize, img_norm and pretrained must agree.
/// Classes, resize and img_norm are compared only when declared; what was not declared is taken from the checkpoint.
/// </summary>
public static class CheckpointConformance
{
    private const string Mismatch = "The checkpoint does not match its declared metadata: ";
    private const string Fix =
        " Declare what the checkpoint's hparams.json says (ifcb models register reads it for you), or upload the checkpoint you meant.";

    // Img-norm values travel as decimal text and as doubles; anything closer than this is the same normalisation.
    private const double ImgNormRelativeTolerance = 1e-6;

    /// <exception cref="IfcbException">InvalidArgument naming the first field that differs and both values.</exception>
    public static void Check(NewModelVersion declared, CheckpointHeader stored)
    {
        ArgumentNullException.ThrowIfNull(declared);
        ArgumentNullException.ThrowIfNull(stored);
        if (!string.Equals(declared.Arch, stored.Arch, StringComparison.Ordinal))
            Fail($"arch is declared as '{declared.Arch}' but the checkpoint's is '{stored.Arch}'.");

        if (!declared.Classes.IsDefaultOrEmpty)
        {
            if (declared.Classes.Length != stored.Classes.Length)
                Fail(Invariant($"classes: {declared.Classes.Length} are declared but the checkpoint has {stored.Classes.Length}."));

            for (var i = 0; i < stored.Classes.Length; i++)
            {
                if (!string.Equals(declared.Classes[i], stored.Classes[i], StringComparison.Ordinal))
                {
                    Fail(Invariant($"classes[{i}] is declared as '{declared.Classes[i]}' but the checkpoint's is '{stored.Classes[i]}'") +
                        " (classes are in output-index order).");
                }
            }
        }

        if (declared.Resize is { } resize && resize != stored.Resize)
            Fail(Invariant($"resize is declared as {resize} but the checkpoint's is {stored.Resize}."));

        if (declared.ImgNorm is { } norm)
        {
            if (stored.ImgNorm is not { } storedNorm)
                Fail($"img_norm is declared as \"{norm}\" but the checkpoint has none.");
            else if (!SameValues(norm.Mean, storedNorm.Mean) || !SameValues(norm.Std, storedNorm.Std))
                Fail($"img_norm is declared as \"{norm}\" but the checkpoint's is \"{Text(storedNorm.Mean)} {Text(storedNorm.Std)}\".");
        }

        if (declared.Pretrained != stored.Pretrained)
            Fail($"pretrained is declared as {Bool(declared.Pretrained)} but the checkpoint's is {Bool(stored.Pretrained)}.");
    }

    /// <summary>The version with every field that was not declared filled in from the checkpoint.</summary>
    public static ModelVersion Complete(ModelVersion version, CheckpointHeader stored)
    {
        ArgumentNullException.ThrowIfNull(version);
        ArgumentNullException.ThrowIfNull(stored);
        return version with
        {
            Classes = version.Classes.IsDefaultOrEmpty ? [.. stored.Classes] : version.Classes,
            Resize = version.Resize ?? stored.Resize,
            ImgNorm = version.ImgNorm ?? stored.ImgNorm?.ToImgNorm(),
            ClassThresholds = stored.ClassThresholds is { } thresholds
                ? stored.Classes.Zip(thresholds).Where(p => p.Second is not null)
                    .ToImmutableSortedDictionary(p => p.First, p => p.Second!.Value, StringComparer.Ordinal)
                : null,
        };
    }

    /// <summary>One value means the same value for all three channels, in either form.</summary>
    private static bool SameValues(IReadOnlyList<double> declared, IReadOnlyList<double> stored)
    {
        var channels = Math.Max(declared.Count, stored.Count);
        for (var c = 0; c < channels; c++)
        {
            var (a, b) = (declared[declared.Count == 1 ? 0 : c], stored[stored.Count == 1 ? 0 : c]);
            if (Math.Abs(a - b) > ImgNormRelativeTolerance * Math.Max(Math.Abs(a), Math.Abs(b)))
                return false;
        }

        return declared.Count is 1 or 3 && stored.Count is 1 or 3;
    }

    /// <summary>neuston's form: one value when all channels agree, else three comma-separated (shortest round-trip text).</summary>
    private static string Text(IReadOnlyList<double> values) =>
        values.All(v => v.Equals(values[0]))
            ? values[0].ToString("R", CultureInfo.InvariantCulture)
            : string.Join(',', values.Select(v => v.ToString("R", CultureInfo.InvariantCulture)));

    private static string Bool(bool value) => value ? "true" : "false";

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    [DoesNotReturn]
    private static void Fail(string what) => throw IfcbException.InvalidArgument(Mismatch + what + Fix);
}
