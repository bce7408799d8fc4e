using System.Globalization;
using System.Text.RegularExpressions;
using Ifcb.Data.Bins;
using Ifcb.Inference.Outputs;
using Ifcb.Platform;

namespace Ifcb.Inference;

/// <summary>
/// neuston's output path patterns. Folder: <c>{RUN_ID}</c>, <c>{MODEL_ID}</c>, <c>{RUN_DATE}</c> (<c>yyyyMMdd</c>, UTC).
/// Files: <c>{BIN_ID}</c>, <c>{BIN_YEAR}</c>, <c>{BIN_DATE}</c> (v2 <c>YYYYMMDD</c>, v1 <c>YYYY_DDD</c>) and
/// <c>{INPUT_SUBDIRS}</c> (the item's folder relative to SRC, "" at the top). Unknown placeholders are errors, as they
/// are in neuston's <c>str.format</c>.
/// File patterns are confined to the output folder (on the platform, a job's own folder): absolute patterns and
/// <c>..</c> segments are refused, every expansion is checked to resolve inside the folder, and the folder's
/// <c>{RUN_ID}</c>/<c>{MODEL_ID}</c> must be plain names (a model id comes from whoever wrote the checkpoint).
/// </summary>
public static partial class OutputPattern
{
    private static readonly string[] DirectoryFields = ["RUN_ID", "MODEL_ID", "RUN_DATE"];
    private static readonly string[] BinFileFields = ["BIN_ID", "BIN_YEAR", "BIN_DATE", "INPUT_SUBDIRS"];
    private static readonly string[] ImageFileFields = ["INPUT_SUBDIRS"];

    [GeneratedRegex(@"\{([^{}]*)\}", RegexOptions.CultureInvariant)]
    private static partial Regex Placeholder();

    public static bool UsesInputSubdirs(string pattern) => pattern.Contains("{INPUT_SUBDIRS}", StringComparison.Ordinal);

    /// <summary>The output folder for a run. The folder pattern is the caller's own (it may be absolute or go up).</summary>
    /// <exception cref="ArgumentException">An unknown placeholder, or a run/model id that is not a plain folder name.</exception>
    public static string ExpandDirectory(string pattern, string runId, string modelId, DateTimeOffset timestamp) =>
        Expand(pattern, "--outdir", DirectoryFields, field => field switch
        {
            "RUN_ID" => PlainName(pattern, field, runId),
            "MODEL_ID" => PlainName(pattern, field, modelId),
            _ => timestamp.UtcDateTime.ToString("yyyyMMdd", CultureInfo.InvariantCulture),
        });

    /// <summary>A bin's output file, relative to the output folder.</summary>
    public static string ExpandForBin(string pattern, BinId bin, string inputSubdirs)
    {
        ArgumentNullException.ThrowIfNull(bin);
        CheckConfined(pattern);
        return Relative(pattern, Expand(pattern, "--outfile", BinFileFields, field => field switch
        {
            "BIN_ID" => bin.Lid,
            "BIN_YEAR" => bin.Year.ToString("0000", CultureInfo.InvariantCulture),
            "BIN_DATE" => bin.DateString,
            _ => inputSubdirs,
        }));
    }

    /// <summary>
    /// An image group's output file, relative to the output folder. Bin placeholders are rejected: image sets have no
    /// bin.
    /// </summary>
    public static string ExpandForImages(string pattern, string inputSubdirs)
    {
        CheckConfined(pattern);
        return Relative(pattern, Expand(pattern, "--outfile", ImageFileFields, _ => inputSubdirs));
    }

    /// <summary>
    /// The full path of an expanded output file below <paramref name="outputDirectory"/>, checked to resolve inside it.
    /// </summary>
    /// <exception cref="ArgumentException">It would resolve outside the folder.</exception>
    public static string Resolve(string outputDirectory, string expanded)
    {
        var root = Path.GetFullPath(outputDirectory);
        var inside = Path.EndsInDirectorySeparator(root) ? root : root + Path.DirectorySeparatorChar;
        var full = Path.GetFullPath(Path.Combine(root, expanded));
        if (!full.StartsWith(inside, StringComparison.Ordinal))
            throw new ArgumentException($"Output file \"{expanded}\" resolves outside the output folder {root}; " +
                "output files must stay inside it.", nameof(expanded));
        return full;
    }

    /// <summary>Checks a pattern up front (placeholders, confinement), so a typo or an escape fails before any work is done.</summary>
    /// <exception cref="ArgumentException">What is wrong with the pattern and what to write instead.</exception>
    public static void Validate(string pattern, RunInputType type)
    {
        CheckConfined(pattern);
        Expand(pattern, "--outfile", type == RunInputType.Bin ? BinFileFields : ImageFileFields, _ => "x");
    }

    /// <summary>
    /// Checks a request's output file patterns: at most <see cref="Limits.MaxListItems"/> of at most
    /// <see cref="Limits.MaxTextLength"/> characters, each valid for <paramref name="type"/> and with a supported extension.
    /// </summary>
    /// <exception cref="IfcbException">InvalidArgument: too many patterns, or one too long.</exception>
    /// <exception cref="ArgumentException">A pattern is invalid (see <see cref="Validate"/>) or has an unsupported extension.</exception>
    public static void ValidateAll(IReadOnlyCollection<string> patterns, RunInputType type)
    {
        Limits.CheckList(patterns, "--outfile");
        foreach (var pattern in patterns)
        {
            Validate(pattern, type);
            ResultFile.CheckExtension(pattern);
        }
    }

    private static void CheckConfined(string pattern)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(pattern);
        Limits.CheckText(pattern, "--outfile");
        if (Path.IsPathRooted(pattern) || pattern[0] is '/' or '\\')
            throw new ArgumentException(
                $"--outfile \"{pattern}\" is an absolute path; output files are written inside the output folder, so give a path " +
                "relative to it (e.g. {BIN_ID}.csv or D{BIN_YEAR}/{BIN_ID}_class.h5).", nameof(pattern));
        if (HasParentSegment(pattern))
            throw new ArgumentException(
                $"--outfile \"{pattern}\" has a '..' segment; output files must stay inside the output folder.", nameof(pattern));
    }

    private static bool HasParentSegment(string path) => path.Split(['/', '\\']).Any(segment => segment == "..");

    // An expansion must not leave the folder either ({INPUT_SUBDIRS} comes from the input's layout).
    private static string Relative(string pattern, string expanded) =>
        HasParentSegment(expanded) || Path.IsPathRooted(expanded)
            ? throw new ArgumentException($"--outfile \"{pattern}\" expands to \"{expanded}\", which leaves the output folder.",
                nameof(pattern))
            : expanded;

    private static string PlainName(string pattern, string field, string value) =>
        string.IsNullOrWhiteSpace(value) || value is "." or ".." || value.IndexOfAny(['/', '\\']) >= 0
            ? throw new ArgumentException(
                $"--outdir \"{pattern}\": {{{field}}} is \"{value}\", which is not a plain folder name (no '/', '\\' or '..'); " +
                $"rename it or give --outdir without {{{field}}}.", nameof(pattern))
            : value;

    private static string Expand(string pattern, string what, string[] known, Func<string, string> value)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(pattern);
        var expanded = Placeholder().Replace(pattern, m =>
        {
            var field = m.Groups[1].Value;
            return known.Contains(field, StringComparer.Ordinal)
                ? value(field)
                : throw new ArgumentException(
                    $"{what} \"{pattern}\" uses {{{field}}}, which is not available here; " +
                    $"use {string.Join(", ", known.Select(k => "{" + k + "}"))}.",
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
