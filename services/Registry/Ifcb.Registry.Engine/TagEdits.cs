using System.Collections.Immutable;
using System.Globalization;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine;

/// <summary>
/// The one rule for changing a tag set, a model's or a version's: each edit returns the new tags, or null when nothing
/// would change (so the document is not rewritten and no audit entry is written).
/// </summary>
internal static class TagEdits
{
    /// <summary>
    /// Sets <paramref name="key"/>; a new key needs room (ResourceExhausted past <see cref="Limits.MaxListItems"/>), since
    /// tags live in one document that every change rewrites. <paramref name="owner"/> names the tags' owner in that error.
    /// </summary>
    public static ImmutableSortedDictionary<string, string>? Set(
        ImmutableSortedDictionary<string, string> tags, string key, string value, string owner)
    {
        if (tags.TryGetValue(key, out var current) && current == value)
            return null;

        if (!tags.ContainsKey(key) && tags.Count >= Limits.MaxListItems)
        {
            throw new IfcbException(ErrorKind.ResourceExhausted, string.Create(CultureInfo.InvariantCulture,
                $"{owner} already has {tags.Count} tags, the most it may have (limit {nameof(Limits.MaxListItems)}); delete one first."));
        }

        return tags.SetItem(key, value);
    }

    /// <summary>Removes <paramref name="key"/>; null when it is not there, so removing twice is a safe no-op.</summary>
    public static ImmutableSortedDictionary<string, string>? Remove(ImmutableSortedDictionary<string, string> tags, string key) =>
        tags.ContainsKey(key) ? tags.Remove(key) : null;
}
