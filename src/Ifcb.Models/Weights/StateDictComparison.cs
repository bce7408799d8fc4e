using System.Text;
using static TorchSharp.torch;

namespace Ifcb.Models.Weights;

/// <summary>How a state dict differs from what a model expects: keys it lacks, keys it has in excess, shapes that differ.</summary>
public sealed record StateDictComparison(
    IReadOnlyList<string> Missing,
    IReadOnlyList<string> Unexpected,
    IReadOnlyList<string> ShapeMismatches)
{
    public bool Matches => Missing.Count == 0 && Unexpected.Count == 0 && ShapeMismatches.Count == 0;

    /// <summary>
    /// Compares <paramref name="stateDict"/> with the model's own state dict; keys in <paramref name="ignored"/> count
    /// in neither direction.
    /// </summary>
    public static StateDictComparison Compare(
        nn.Module model, IReadOnlyDictionary<string, Tensor> stateDict, IReadOnlyCollection<string>? ignored = null)
    {
        ArgumentNullException.ThrowIfNull(stateDict);
        return Compare(model, stateDict.ToDictionary(kv => kv.Key, kv => kv.Value.shape, StringComparer.Ordinal), ignored);
    }

    /// <summary>
    /// Compares the shapes of a state dict still in its file (see <see cref="StateDictReader.Tensors"/>) with the
    /// model's.
    /// </summary>
    public static StateDictComparison Compare(
        nn.Module model, IReadOnlyDictionary<string, long[]> stateDict, IReadOnlyCollection<string>? ignored = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(stateDict);
        var skip = new HashSet<string>(ignored ?? [], StringComparer.Ordinal);
        var expected = model.state_dict();
        var missing = new List<string>();
        var mismatched = new List<string>();
        foreach (var (key, tensor) in expected)
        {
            if (skip.Contains(key))
                continue;
            if (!stateDict.TryGetValue(key, out var given))
                missing.Add(key);
            else if (!given.SequenceEqual(tensor.shape))
                mismatched.Add($"{key}: expected [{string.Join(", ", tensor.shape)}], file has [{string.Join(", ", given)}]");
        }
        var unexpected = stateDict.Keys.Where(k => !skip.Contains(k) && !expected.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();
        return new StateDictComparison(missing, unexpected, mismatched);
    }

    /// <summary>A message listing the differences (the first 20 of each kind).</summary>
    public string Describe()
    {
        var text = new StringBuilder();
        Append(text, "missing keys", Missing);
        Append(text, "unexpected keys", Unexpected);
        Append(text, "shape mismatches", ShapeMismatches);
        return text.ToString().TrimEnd();
    }

    private static void Append(StringBuilder text, string what, IReadOnlyList<string> items)
    {
        if (items.Count == 0)
            return;
        text.Append(items.Count).Append(' ').Append(what).Append(": ").Append(string.Join("; ", items.Take(20)));
        if (items.Count > 20)
            text.Append("; …");
        text.Append(". ");
    }
}
