using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Ifcb.Training.Engine.Tests;

public class ClassificationMetricsTests
{
    [Fact]
    public void Hand_computed_two_class_example()
    {
        // truth:     0 0 0 1 1
        // predicted: 0 1 0 1 0
        var m = ClassificationMetrics.Compute([0, 0, 0, 1, 1], [0, 1, 0, 1, 0], 2);
        Assert.Equal(2, m.ConfusionMatrix[0, 0]);
        Assert.Equal(1, m.ConfusionMatrix[0, 1]);
        Assert.Equal(1, m.ConfusionMatrix[1, 0]);
        Assert.Equal(1, m.ConfusionMatrix[1, 1]);
        Assert.Equal(2.0 / 3, m.Precision[0], 12);
        Assert.Equal(2.0 / 3, m.Recall[0], 12);
        Assert.Equal(0.5, m.F1[1], 12);
        Assert.Equal(0.6, m.Accuracy, 12);
        Assert.Equal((2.0 / 3 * 3 + 0.5 * 2) / 5, m.F1Weighted, 12);
    }

    [Fact]
    public void Class_never_predicted_nor_present_scores_zero_not_nan()
    {
        var m = ClassificationMetrics.Compute([0, 0, 1], [0, 0, 0], 3);
        Assert.Equal(0, m.Precision[1]);
        Assert.Equal(0, m.F1[2]);
        Assert.False(double.IsNaN(m.F1Macro));
    }

    /// <summary>Compares with scikit-learn itself (Debian's python3-sklearn) on random labels with absent classes.</summary>
    [Fact]
    public void Matches_scikit_learn_on_random_labels()
    {
        var random = new Random(7);
        const int classes = 6;
        var truth = Enumerable.Range(0, 300).Select(_ => random.Next(classes - 1)).ToArray(); // class 5 never true
        var predicted = truth.Select(t => random.NextDouble() < 0.6 ? t : random.Next(classes)).ToArray();
        var ours = ClassificationMetrics.Compute(truth, predicted, classes);

        var script = $$"""
            import json, sys
            from sklearn.metrics import f1_score, precision_score, recall_score, confusion_matrix, accuracy_score
            t = {{JsonSerializer.Serialize(truth)}}; p = {{JsonSerializer.Serialize(predicted)}}; L = list(range({{classes}}))
            out = dict(
              cm=confusion_matrix(t, p, labels=L).tolist(),
              f1=f1_score(t, p, labels=L, average=None, zero_division=0).tolist(),
              precision=precision_score(t, p, labels=L, average=None, zero_division=0).tolist(),
              recall=recall_score(t, p, labels=L, average=None, zero_division=0).tolist(),
              f1_macro=f1_score(t, p, labels=L, average='macro', zero_division=0),
              f1_weighted=f1_score(t, p, labels=L, average='weighted', zero_division=0),
              accuracy=accuracy_score(t, p))
            print(json.dumps(out))
            """;
        var sklearn = JsonDocument.Parse(RunPython(script)).RootElement;

        var cm = sklearn.GetProperty("cm");
        for (var r = 0; r < classes; r++)
            for (var c = 0; c < classes; c++)
                Assert.Equal(cm[r][c].GetInt32(), ours.ConfusionMatrix[r, c]);
        for (var c = 0; c < classes; c++)
        {
            Assert.Equal(sklearn.GetProperty("f1")[c].GetDouble(), ours.F1[c], 12);
            Assert.Equal(sklearn.GetProperty("precision")[c].GetDouble(), ours.Precision[c], 12);
            Assert.Equal(sklearn.GetProperty("recall")[c].GetDouble(), ours.Recall[c], 12);
        }
        Assert.Equal(sklearn.GetProperty("f1_macro").GetDouble(), ours.F1Macro, 12);
        Assert.Equal(sklearn.GetProperty("f1_weighted").GetDouble(), ours.F1Weighted, 12);
        Assert.Equal(sklearn.GetProperty("accuracy").GetDouble(), ours.Accuracy, 12);
    }

    private static string RunPython(string script)
    {
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        process.StandardInput.Write(script);
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEnd();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, string.Create(CultureInfo.InvariantCulture,
            $"python3 (needs python3-sklearn; ./test.sh installs it) failed with {process.ExitCode}: {error}"));
        return output;
    }
}
