namespace Ifcb.Inference;

public enum FilterMode
{
    /// <summary>Keep only items matching a keyword.</summary>
    In,

    /// <summary>Drop items matching a keyword.</summary>
    Out,
}

/// <summary>
/// neuston's <c>--filter IN|OUT KEYWORD…</c>: an item matches when any keyword is a substring (ordinal, case-sensitive)
/// of its id. For bins the id is <c>{relative folder}/{bin id}</c> (neuston's pid with namespace), for images the path
/// relative to SRC. neuston also passes the keywords to pyifcb as folder white/blacklists; we do not need that, since
/// our walker takes every folder and the substring test sees the folder names anyway.
/// </summary>
public sealed record RunFilter
{
    public RunFilter(FilterMode mode, IReadOnlyList<string> keywords)
    {
        ArgumentNullException.ThrowIfNull(keywords);
        if (keywords.Count == 0)
            throw new ArgumentException("--filter needs at least one keyword (or a text file of keywords) after IN or OUT.",
                nameof(keywords));
        if (keywords.Any(string.IsNullOrEmpty))
            throw new ArgumentException("--filter keywords must not be empty (an empty keyword would match everything).", nameof(keywords));
        Mode = mode;
        Keywords = keywords;
    }

    public FilterMode Mode { get; }

    public IReadOnlyList<string> Keywords { get; }

    /// <summary>
    /// Parses <c>IN</c>/<c>OUT</c> (any case) and the keywords. A keyword naming an existing file is replaced by the
    /// file's non-blank lines, one keyword per line (trimmed; neuston's fix for issue #8: no trailing newlines).
    /// </summary>
    /// <exception cref="ArgumentException">The mode is neither IN nor OUT, or no keywords remain.</exception>
    public static RunFilter Parse(string mode, IEnumerable<string> keywordsOrFiles)
    {
        ArgumentNullException.ThrowIfNull(mode);
        ArgumentNullException.ThrowIfNull(keywordsOrFiles);
        var parsedMode = mode.ToUpperInvariant() switch
        {
            "IN" => FilterMode.In,
            "OUT" => FilterMode.Out,
            _ => throw new ArgumentException($"--filter mode \"{mode}\" must be IN or OUT, followed by keywords.", nameof(mode)),
        };
        var keywords = new List<string>();
        foreach (var keyword in keywordsOrFiles)
        {
            if (File.Exists(keyword))
                keywords.AddRange(File.ReadAllLines(keyword).Select(l => l.Trim()).Where(l => l.Length > 0));
            else if (!string.IsNullOrWhiteSpace(keyword))
                keywords.Add(keyword);
        }
        return new RunFilter(parsedMode, keywords);
    }

    /// <summary>True when the item with this id takes part in the run.</summary>
    public bool Accepts(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        var matches = Keywords.Any(k => id.Contains(k, StringComparison.Ordinal));
        return Mode == FilterMode.In ? matches : !matches;
    }
}
