using System.Globalization;
using System.Text.RegularExpressions;
using Ifcb.Data.Bins;

namespace Ifcb.Inference;

/// <summary>
/// neuston's output path patterns. Folder: <c>{RUN_ID}</c>, <c>{MODEL_ID}</c>, <c>{RUN_DATE}</c> (<c>yyyyMMdd</c>, UTC).
/// Files: <c>{BIN_ID}</c>, <c>{BIN_YEAR}</c>, <c>{BIN_DATE}</c> (v2 <c>YYYYMMDD</c>, v1 <c>YYYY_DDD</c>) and
/// <c>{INPUT_SUBDIRS}</c> (the item's folder relative to SRC, "" at the top). Unknown placeholders are errors, as they
/// are in neuston's <c>str.format</c>.
/// </summary>
public static partial class OutputPattern
{
    private static readonly string[] DirectoryFields = ["RUN_ID", "MODEL_ID", "RUN_DATE"];
    private static readonly string[] BinFileFields = ["BIN_ID", "BIN_YEAR", "BIN_DATE", "INPUT_SUBDIRS"];
    private static readonly string[] ImageFileFields = ["INPUT_SUBDIRS"];

    [GeneratedRegex(@"\{([^{}]*)\}", RegexOptions.CultureInvariant)]
    private static partial Regex Placeholder();

    public static bool UsesInputSubdirs(string pattern) => pattern.Contains("{INPUT_SUBDIRS}", StringComparison.Ordinal);

    /// <summary>The output folder for a run.</summary>
    public static string ExpandDirectory(string pattern, string runId, string modelId, DateTimeOffset timestamp) =>
        Expand(pattern, "--outdir", DirectoryFields, field => field switch
        {
            "RUN_ID" => runId,
            "MODEL_ID" => modelId,
            _ => timestamp.UtcDateTime.ToString("yyyyMMdd", CultureInfo.InvariantCulture),
        });

    /// <summary>A bin's output file, relative to the output folder (or absolute when the pattern is).</summary>
    public static string ExpandForBin(string pattern, BinId bin, string inputSubdirs)
    {
        ArgumentNullException.ThrowIfNull(bin);
        return Expand(pattern, "--outfile", BinFileFields, field => field switch
        {
            "BIN_ID" => bin.Lid,
            "BIN_YEAR" => bin.Year.ToString("0000", CultureInfo.InvariantCulture),
            "BIN_DATE" => bin.DateString,
            _ => inputSubdirs,
        });
    }

    /// <summary>An image group's output file. Bin placeholders are rejected: image sets have no bin.</summary>
    public static string ExpandForImages(string pattern, string inputSubdirs) =>
        Expand(pattern, "--outfile", ImageFileFields, _ => inputSubdirs);

    /// <summary>Checks a pattern's placeholders up front, so a typo fails before any work is done.</summary>
    public static void Validate(string pattern, RunInputType type) =>
        Expand(pattern, "--outfile", type == RunInputType.Bin ? BinFileFields : ImageFileFields, _ => "x");

    private static string Expand(string pattern, string what, string[] known, Func<string, string> value)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(pattern);
        var expanded = Placeholder().Replace(pattern, m =>
        {
            var field = m.Groups[1].Value;
            return known.Contains(field, StringComparer.Ordinal)
                ? value(field)
                : throw new ArgumentException(
                    $"{what} \"{pattern}\" uses {{{field}}}, which is not available here; use {string.Join(", ", known.Select(k => "{" + k + "}"))}.",
                    nameof(pattern));
        });
        // An empty {INPUT_SUBDIRS} must not turn "{INPUT_SUBDIRS}/x.json" into the absolute "/x.json".
        var rooted = Path.IsPathRooted(pattern);
        var segments = expanded.Split(['/', '\\'], StringSplitOptions.RemoveEmptyEntries);
        if (segments.Length == 0)
            throw new ArgumentException($"{what} \"{pattern}\" expands to an empty path.", nameof(pattern));
        var joined = Path.Combine(segments);
        return rooted ? Path.DirectorySeparatorChar + joined : joined;
    }
}
