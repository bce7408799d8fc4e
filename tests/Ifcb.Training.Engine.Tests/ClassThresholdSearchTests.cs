using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Ifcb.Training.Engine.Tests;

/// <summary>Per-class thresholds: a hand example, then scikit-learn's f1_score over every candidate on synthetic scores.</summary>
public sealed class ClassThresholdSearchTests
{
    [Fact]
    public void Picks_the_best_f1_threshold_ties_to_the_lowest_and_leaves_small_or_hopeless_classes_without()
    {
        // Class 0 (4 true): winners 0.9 ✓, 0.8 ✗, 0.7 ✓, 0.6 ✓, 0.55 ✗.
        //   t=0.9: TP1 FP0 FN3 → 0.4; t=0.8: TP1 FP1 FN3 → 1/3; t=0.7: TP2 FP1 FN2 → 4/7; t=0.6: TP3 FP1 FN1 → 0.75;
        //   t=0.55: TP3 FP2 FN1 → 2/3. Best 0.6.
        // Class 1 (3 true): winners 0.95 ✓, 0.5 ✗, 0.4 ✗; t=0.95: TP1 FP0 FN2 → 0.5; t=0.5: 0.4; t=0.4: 1/3. Best 0.95.
        // Class 2 (2 true, under the minimum of 3): no threshold, whatever its scores.
        // Class 3 (3 true, never a winner): no candidate, no threshold.
        int[] truth = [0, 1, 0, 0, 2, 1, 2, 0, 3, 3, 3, 1];
        int[] predicted = [0, 0, 0, 0, 0, 1, 2, 1, 1, 2, 2, 2];
        float[] own = [0.9f, 0.8f, 0.7f, 0.6f, 0.55f, 0.95f, 0.9f, 0.5f, 0.4f, 0.5f, 0.5f, 0.6f];
        var scores = own.Select((s, i) => Row(predicted[i], s, 4)).ToList();

        var thresholds = ClassThresholdSearch.Compute(truth, predicted, scores, 4);

        Assert.Equal<double?>(0.6f, thresholds[0].Threshold);
        Assert.Equal(0.75, thresholds[0].F1, 12);
        Assert.Equal(4, thresholds[0].ValidationImages);
        Assert.Equal<double?>(0.95f, thresholds[1].Threshold);
        Assert.Null(thresholds[2].Threshold);
        Assert.Equal(2, thresholds[2].ValidationImages);
        Assert.Null(thresholds[3].Threshold);

        // Two thresholds with the same F1 for class 0 (3 true): 0.8 (TP1 FP0 FN2 = 0.5) and 0.3 (TP2 FP3 FN1 = 0.5); 0.6,
        // 0.5 and 0.4 score less. The lower wins.
        var tie = ClassThresholdSearch.Compute([0, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 1],
            [Row(0, 0.8f, 4), Row(0, 0.6f, 4), Row(0, 0.5f, 4), Row(0, 0.4f, 4), Row(0, 0.3f, 4), Row(1, 0.9f, 4)], 4);
        Assert.Equal<double?>(0.3f, tie[0].Threshold);
        Assert.Equal(0.5, tie[0].F1, 12);
    }

    /// <summary>
    /// An independent brute force with Debian's scikit-learn: for every candidate threshold of every class, the labels RUN
    /// would write and f1_score on them; the best, ties to the lowest. Scores are float32 with many ties (2 decimals).
    /// </summary>
    [Fact]
    public void Matches_a_scikit_learn_brute_force_on_synthetic_scores()
    {
        var random = new Random(17);
        const int classes = 6;
        // Class 5 has 2 validation images (under the minimum); class 4 is mostly confused with class 3.
        var truth = Enumerable.Range(0, 400).Select(i => i < 2 ? 5 : random.Next(classes - 1)).ToArray();
        var scores = truth.Select(t =>
        {
            var logits = Enumerable.Range(0, classes).Select(c => random.NextDouble() * 2 + (c == t ? 1.2 : 0)
                + (t == 4 && c == 3 ? 1.5 : 0)).ToArray();
            var sum = logits.Sum(Math.Exp);
            return logits.Select(l => (float)Math.Round(Math.Exp(l) / sum, 2)).ToArray();
        }).ToList();
        var predicted = scores.Select(ArgMax).ToArray();

        var ours = ClassThresholdSearch.Compute(truth, predicted, scores, classes);

        // Scores go to Python as the exact doubles of the floats, so both sides compare the same numbers.
        var rows = JsonSerializer.Serialize(scores.Select(r => r.Select(s => (double)s)));
        var script = $$"""
            import json
            from sklearn.metrics import f1_score
            truth = {{JsonSerializer.Serialize(truth)}}; scores = {{rows}}; minimum = {{ClassThresholdSearch.MinimumValidationImages}}
            winners = [max(range(len(r)), key=lambda c: (r[c], -c)) for r in scores]
            out = []
            for c in range({{classes}}):
                y_true = [t == c for t in truth]
                best, best_f1 = None, 0.0
                for t in sorted({scores[i][c] for i in range(len(truth)) if winners[i] == c}):
                    y_pred = [winners[i] == c and scores[i][c] >= t for i in range(len(truth))]
                    f1 = f1_score(y_true, y_pred, zero_division=0)
                    if f1 > best_f1 + 1e-12:
                        best, best_f1 = t, f1
                out.append(best if sum(y_true) >= minimum else None)
            print(json.dumps(dict(winners=winners, thresholds=out)))
            """;
        var sklearn = JsonDocument.Parse(RunPython(script)).RootElement;

        Assert.Equal(predicted, sklearn.GetProperty("winners").EnumerateArray().Select(e => e.GetInt32()));
        var expected = sklearn.GetProperty("thresholds").EnumerateArray()
            .Select(e => e.ValueKind == JsonValueKind.Null ? (double?)null : e.GetDouble()).ToArray();
        Assert.Equal(expected, ours.Select(t => t.Threshold));
        Assert.Null(ours[5].Threshold);
        Assert.True(ours.Count(t => t.Threshold is not null) >= 4, "the synthetic scores should give most classes a threshold");
    }

    private static float[] Row(int winner, float score, int classes)
    {
        var row = Enumerable.Repeat((1 - score) / (classes - 1), classes).ToArray();
        row[winner] = score;
        return row;
    }

    private static int ArgMax(float[] row)
    {
        var best = 0;
        for (var c = 1; c < row.Length; c++)
        {
            if (row[c] > row[best])
                best = c;
        }
        return best;
    }

    private static string RunPython(string script)
    {
        var start = new ProcessStartInfo("/usr/bin/python3")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        process.StandardInput.Write(script);
        process.StandardInput.Close();
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, string.Create(CultureInfo.InvariantCulture,
            $"python3 (needs python3-sklearn; ./test.sh installs it) failed with {process.ExitCode}: {error.Result}"));
        return output;
    }
}
