using System.CommandLine;
using System.Text;
using Ifcb.Contracts;
using Ifcb.Data.Datasets;
using Ifcb.Platform;

namespace Ifcb.Cli;

/// <summary>neuston_net's dataset flags, shared by <c>norm</c> and <c>train</c>, spelled as neuston spells them.</summary>
public static class NeustonOptions
{
    /// <summary><c>--class-config CSV COL</c>: two values, as neuston.</summary>
    public static Option<string[]> ClassConfig() => new("--class-config")
    {
        Description = "Skip, rename or merge classes according to column COL of a class-config CSV.",
        HelpName = "CSV COL",
        Arity = new ArgumentArity(2, 2),
        AllowMultipleArgumentsPerToken = true,
    };

    public static Option<int> ClassMin() => new("--class-min")
    {
        Description = "Drop classes with fewer images than this (after class-config merging).",
        DefaultValueFactory = _ => 2,
    };

    public static Option<int?> ClassMax() => new("--class-max")
    {
        Description = "Cap each class at this many images (random sample).",
    };

    /// <summary>Reads <c>--class-config CSV COL</c>: the loaded config (local mode) or null when absent.</summary>
    public static ClassConfig? LoadClassConfig(ParseResult parse, Option<string[]> option) =>
        parse.GetValue(option) is [var csv, var column] ? Ifcb.Data.Datasets.ClassConfig.Load(csv, column) : null;

    /// <summary>Reads <c>--class-config CSV COL</c> as text for the platform: (CSV text, column) or empty strings.</summary>
    public static (string Csv, string Column) ClassConfigText(ParseResult parse, Option<string[]> option)
    {
        if (parse.GetValue(option) is not [var csv, var column])
            return ("", "");
        if (!File.Exists(csv))
            throw new FileNotFoundException($"Class-config CSV {csv} does not exist.", csv);
        // Parsed here too, so a wrong column is reported before anything is uploaded.
        var text = File.ReadAllText(csv);
        Ifcb.Data.Datasets.ClassConfig.Parse(text, column, csv);
        return (text, column);
    }
}

/// <summary>
/// neuston's <c>--img-norm MEAN STD</c> (two tokens, each one value or three comma-separated), the one-token form
/// <c>--img-norm "MEAN STD"</c>, or <c>--img-norm auto</c> (compute the dataset's statistics first).
/// </summary>
public sealed record ImgNormChoice(ImgNorm? Value, bool Auto)
{
    public static ImgNormChoice None { get; } = new(null, false);

    public static Option<string[]> CreateOption() => new("--img-norm")
    {
        Description = "Normalise inputs: MEAN STD (each one value or R,G,B), or 'auto' to compute them from the dataset. Default: none.",
        HelpName = "MEAN STD|auto",
        Arity = new ArgumentArity(1, 2),
        AllowMultipleArgumentsPerToken = true,
    };

    /// <exception cref="FormatException">Malformed values (the message says how to write them).</exception>
    public static ImgNormChoice Parse(IReadOnlyList<string>? tokens) => tokens switch
    {
        null or [] => None,
        [var single] when single.Trim().Equals("auto", StringComparison.OrdinalIgnoreCase) => new(null, true),
        [var meanAndStd] => new(ImgNorm.Parse(meanAndStd), false),
        [var mean, var std] => new(ImgNorm.Parse(mean, std), false),
        _ => throw new FormatException("--img-norm takes MEAN STD or auto."),
    };

    /// <summary>The platform's <c>img_norm</c> field: "MEAN STD", "auto" or empty.</summary>
    public string ToRequestField() => Auto ? "auto" : Value?.ToString() ?? "";
}

/// <summary>Dataset names for uploads made on the user's behalf.</summary>
public static class DatasetNames
{
    /// <summary>
    /// A valid dataset name from a folder name: characters outside <c>A-Z a-z 0-9 . _ -</c> become '-', runs of dots
    /// collapse, at most 64 characters, starting with a letter or digit.
    /// </summary>
    public static string FromFolder(string folder)
    {
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)));
        var text = new StringBuilder(name.Length);
        foreach (var c in name)
            text.Append(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.' ? c : '-');
        var sanitised = text.ToString();
        while (sanitised.Contains("..", StringComparison.Ordinal))
            sanitised = sanitised.Replace("..", ".", StringComparison.Ordinal);
        sanitised = sanitised.TrimStart('.', '_', '-');
        if (sanitised.Length > ResourceName.MaxDatasetNameLength)
            sanitised = sanitised[..ResourceName.MaxDatasetNameLength];
        if (sanitised.Length == 0)
            throw new UsageException($"Cannot make a dataset name from the folder name '{name}'; pass --dataset NAME.");
        return ResourceName.ValidateDatasetName(sanitised);
    }
}
