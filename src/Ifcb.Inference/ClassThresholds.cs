using System.Globalization;
using Ifcb.Models.Checkpoints;

namespace Ifcb.Inference;

/// <summary>
/// Per-class score thresholds applied to RUN's winners: a ROI keeps its winning class when the winner's score is at
/// least that class's threshold, and is <see cref="Unclassified"/> otherwise; a class without a threshold keeps every
/// winner. They come from the checkpoint (chosen at the end of training, see the training engine's
/// <c>ClassThresholdSearch</c>) or from a CSV given with <c>--thresholds</c> (<see cref="ReadCsv"/>), which replaces the
/// checkpoint's.
/// </summary>
public sealed record ClassThresholds
{
    /// <summary>The thresholded label of a ROI whose winning score is below its class's threshold.</summary>
    public const string Unclassified = "unclassified";

    /// <summary>The thresholded class index of an unclassified ROI in <c>.h5</c> and <c>.json</c> outputs.</summary>
    public const int UnclassifiedIndex = -1;

    private ClassThresholds(IReadOnlyList<double?> values, string source)
    {
        Values = values;
        Source = source;
    }

    /// <summary>One entry per class in the model's order; null = no threshold.</summary>
    public IReadOnlyList<double?> Values { get; }

    /// <summary>Where they came from: <c>checkpoint</c>, <c>none</c> or <c>file:NAME</c>.</summary>
    public string Source { get; }

    /// <summary>The checkpoint's thresholds, or none when it has none.</summary>
    public static ClassThresholds FromCheckpoint(ModelHparams hparams)
    {
        ArgumentNullException.ThrowIfNull(hparams);
        return hparams.ClassThresholds is { } values && values.Count == hparams.Classes.Count
            ? new ClassThresholds([.. values], "checkpoint")
            : new ClassThresholds(new double?[hparams.Classes.Count], "none");
    }

    /// <summary>
    /// Reads a thresholds CSV: lines starting with <c>#</c> are comments; the first other line is the header
    /// <c>class,threshold</c>; then one row per class with its label and a score from 0 to 1, or an empty cell for none.
    /// Classes of the model that the file does not list get no threshold.
    /// </summary>
    /// <exception cref="InvalidDataException">The header, a number, an unknown or repeated class; the message names the line.</exception>
    public static ClassThresholds ReadCsv(string path, IReadOnlyList<string> classes)
    {
        ArgumentNullException.ThrowIfNull(classes);
        var index = classes.Select((label, i) => (label, i)).ToDictionary(p => p.label, p => p.i, StringComparer.Ordinal);
        var values = new double?[classes.Count];
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var header = false;
        var number = 0;
        foreach (var line in File.ReadLines(path))
        {
            number++;
            if (line.Length == 0 || line.StartsWith('#'))
                continue;
            var fields = Outputs.ResultWinners.Fields(line);
            if (!header)
            {
                if (fields.Count != 2 || fields[0].Trim() != "class" || fields[1].Trim() != "threshold")
                    throw new InvalidDataException($"{path}:{number}: the header must be class,threshold.");
                header = true;
                continue;
            }
            if (fields.Count != 2)
                throw new InvalidDataException($"{path}:{number}: expected 2 fields (class,threshold), found {fields.Count}.");
            var label = fields[0];
            if (!index.TryGetValue(label, out var c))
                throw new InvalidDataException($"{path}:{number}: \"{label}\" is not one of the model's classes.");
            if (!seen.Add(label))
                throw new InvalidDataException($"{path}:{number}: class \"{label}\" is listed twice.");
            var text = fields[1].Trim();
            if (text.Length == 0)
                continue;
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !(value >= 0 && value <= 1))
                throw new InvalidDataException($"{path}:{number}: threshold \"{text}\" is not a score from 0 to 1.");
            values[c] = value;
        }
        if (!header)
            throw new InvalidDataException($"{path} has no class,threshold header.");
        return new ClassThresholds(values, "file:" + Path.GetFileName(path));
    }

    /// <summary>The thresholded class of a row: <paramref name="winner"/>, or <see cref="UnclassifiedIndex"/>.</summary>
    public int Apply(int winner, float score) =>
        Values[winner] is { } threshold && score < threshold ? UnclassifiedIndex : winner;

    /// <summary>The thresholded class of every row of <paramref name="scores"/>.</summary>
    public int[] Apply(ClassScores scores)
    {
        ArgumentNullException.ThrowIfNull(scores);
        if (scores.NumClasses != Values.Count)
            throw new ArgumentException($"The scores have {scores.NumClasses} classes; there are {Values.Count} thresholds.",
                nameof(scores));
        var labels = new int[scores.Count];
        for (var i = 0; i < scores.Count; i++)
        {
            var winner = scores.Classes[i];
            labels[i] = Apply(winner, scores.Row(i)[winner]);
        }
        return labels;
    }
}
