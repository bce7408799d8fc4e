namespace Ifcb.Training.Engine;

/// <summary>
/// Validation metrics with scikit-learn's definitions over labels 0..C−1 (<c>zero_division=0</c>): confusion matrix
/// (rows = true class, columns = predicted), per-class precision/recall/F1/support, macro and support-weighted
/// averages, accuracy.
/// </summary>
public sealed record ClassificationMetrics(
    int[,] ConfusionMatrix,
    double[] Precision,
    double[] Recall,
    double[] F1,
    int[] Support,
    double F1Macro,
    double F1Weighted,
    double PrecisionMacro,
    double PrecisionWeighted,
    double RecallMacro,
    double RecallWeighted,
    double Accuracy)
{
    public static ClassificationMetrics Compute(IReadOnlyList<int> truth, IReadOnlyList<int> predicted, int classCount)
    {
        if (truth.Count != predicted.Count)
            throw new ArgumentException($"{truth.Count} true labels but {predicted.Count} predictions.");
        var confusion = new int[classCount, classCount];
        for (var i = 0; i < truth.Count; i++)
            confusion[truth[i], predicted[i]]++;

        var precision = new double[classCount];
        var recall = new double[classCount];
        var f1 = new double[classCount];
        var support = new int[classCount];
        var correct = 0;
        for (var c = 0; c < classCount; c++)
        {
            var truePositive = confusion[c, c];
            var predictedPositive = 0;
            var actualPositive = 0;
            for (var k = 0; k < classCount; k++)
            {
                predictedPositive += confusion[k, c];
                actualPositive += confusion[c, k];
            }
            correct += truePositive;
            support[c] = actualPositive;
            precision[c] = predictedPositive == 0 ? 0 : (double)truePositive / predictedPositive;
            recall[c] = actualPositive == 0 ? 0 : (double)truePositive / actualPositive;
            // sklearn computes F1 from counts: 2·TP / (2·TP + FP + FN), 0 when the denominator is 0.
            var denominator = 2 * truePositive + (predictedPositive - truePositive) + (actualPositive - truePositive);
            f1[c] = denominator == 0 ? 0 : 2.0 * truePositive / denominator;
        }

        var total = truth.Count;
        double Weighted(double[] values) => total == 0 ? 0 : values.Select((v, c) => v * support[c]).Sum() / total;
        double Macro(double[] values) => classCount == 0 ? 0 : values.Average();
        return new ClassificationMetrics(confusion, precision, recall, f1, support,
            Macro(f1), Weighted(f1), Macro(precision), Weighted(precision), Macro(recall), Weighted(recall),
            total == 0 ? 0 : (double)correct / total);
    }

    /// <summary>Class indices sorted by a per-class statistic, descending, stable (neuston's classes_by_*).</summary>
    public static int[] ClassesBy(IReadOnlyList<double> values) =>
        [.. Enumerable.Range(0, values.Count).OrderByDescending(c => values[c])];
}
