using System.Globalization;
using System.Text;

namespace Ifcb.Training.Engine;

/// <summary>One class's threshold and how it was chosen.</summary>
/// <param name="Threshold">The score threshold, or null when the class gets none (see <see cref="ClassThresholdSearch"/>).</param>
/// <param name="F1">The class's one-vs-rest F1 on the validation images with the threshold applied (without one: with
/// every winner kept).</param>
/// <param name="ValidationImages">Validation images whose true class it is.</param>
public sealed record ClassThreshold(double? Threshold, double F1, int ValidationImages);

/// <summary>
/// Per-class score thresholds from the best epoch's validation scores, in the spirit of ifcb-analysis'
/// <c>optval_analysis_byClass</c>, chosen for the rule RUN applies: a ROI keeps its winning class c when its score for c
/// is at least c's threshold, and is <c>unclassified</c> otherwise. For each class c, the candidates are the scores of
/// the validation images whose winner is c (a threshold is always a score at which some image is kept); each candidate t
/// labels an image c when its winner is c and its c-score ≥ t, and is scored by c's one-vs-rest F1 (2·TP / (2·TP + FP +
/// FN), true class c against every other). The threshold is the candidate with the highest F1; on a tie, the lowest
/// (it leaves the most ROIs classified). A class gets no threshold (null) when fewer than
/// <see cref="MinimumValidationImages"/> validation images are of that class (too few to choose a score from), or when
/// no candidate reaches an F1 above 0 (no image of it is ever its winner correctly).
/// </summary>
public static class ClassThresholdSearch
{
    /// <summary>A class needs at least this many validation images of its own to get a threshold.</summary>
    public const int MinimumValidationImages = 3;

    /// <param name="truth">True class per validation image.</param>
    /// <param name="predicted">Winning class per image (the first highest score, as RUN picks it).</param>
    /// <param name="scores">Softmax scores per image, <paramref name="classCount"/> each.</param>
    public static IReadOnlyList<ClassThreshold> Compute(IReadOnlyList<int> truth, IReadOnlyList<int> predicted,
        IReadOnlyList<float[]> scores, int classCount)
    {
        ArgumentNullException.ThrowIfNull(truth);
        ArgumentNullException.ThrowIfNull(predicted);
        ArgumentNullException.ThrowIfNull(scores);
        if (predicted.Count != truth.Count || scores.Count != truth.Count)
            throw new ArgumentException($"{truth.Count} truths, {predicted.Count} winners and {scores.Count} score rows must agree.");
        // One pass over the images, not one per class: up to 10 000 classes meet large validation sets.
        var positivesOf = new int[classCount];
        var winnersOf = new List<(double Score, bool Correct)>?[classCount];
        for (var i = 0; i < truth.Count; i++)
        {
            positivesOf[truth[i]]++;
            var winner = predicted[i];
            (winnersOf[winner] ??= []).Add((scores[i][winner], truth[i] == winner));
        }
        var thresholds = new ClassThreshold[classCount];
        for (var c = 0; c < classCount; c++)
        {
            var positives = positivesOf[c];
            // The class's winners, highest score first: lowering the threshold past each distinct score keeps that group too.
            var winners = winnersOf[c] ?? [];
            winners.Sort((a, b) => b.Score.CompareTo(a.Score));
            double? best = null;
            var bestF1 = 0.0;
            int truePositives = 0, falsePositives = 0;
            for (var k = 0; k < winners.Count;)
            {
                var score = winners[k].Score;
                for (; k < winners.Count && winners[k].Score == score; k++)
                {
                    if (winners[k].Correct)
                        truePositives++;
                    else
                        falsePositives++;
                }
                var f1 = F1(truePositives, falsePositives, positives - truePositives);
                // >= : an equal F1 at a lower threshold wins (ties go to the lowest).
                if (f1 > 0 && f1 >= bestF1)
                    (best, bestF1) = (score, f1);
            }
            var untouched = F1(truePositives, falsePositives, positives - truePositives);
            thresholds[c] = positives < MinimumValidationImages || best is null
                ? new ClassThreshold(null, untouched, positives)
                : new ClassThreshold(best, bestF1, positives);
        }
        return thresholds;
    }

    /// <summary>
    /// The thresholds as <c>class_thresholds.csv</c>, the file <c>ifcb run --thresholds</c> reads: <c>#</c> comment lines,
    /// the header <c>class,threshold</c>, then one row per class (an empty threshold for none), RFC 4180 quoting.
    /// </summary>
    public static byte[] ToCsv(IReadOnlyList<string> classes, IReadOnlyList<ClassThreshold> thresholds)
    {
        ArgumentNullException.ThrowIfNull(classes);
        ArgumentNullException.ThrowIfNull(thresholds);
        var csv = new StringBuilder()
            .Append("# Per-class score thresholds from the best epoch's validation scores (F1 per class in results.json);\n")
            .Append("# edit and pass to ifcb run --thresholds. Empty = no threshold.\n")
            .Append("class,threshold\n");
        for (var c = 0; c < classes.Count; c++)
        {
            var label = classes[c];
            var quoted = label.AsSpan().IndexOfAny(",\"\r\n") >= 0;
            csv.Append(quoted ? "\"" + label.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : label)
                .Append(',')
                .Append(thresholds[c].Threshold is { } t ? t.ToString("R", CultureInfo.InvariantCulture) : "")
                .Append('\n');
        }
        return Encoding.UTF8.GetBytes(csv.ToString());
    }

    private static double F1(int truePositives, int falsePositives, int falseNegatives) =>
        truePositives == 0 ? 0 : 2.0 * truePositives / (2.0 * truePositives + falsePositives + falseNegatives);
}
