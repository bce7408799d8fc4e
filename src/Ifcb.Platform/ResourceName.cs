namespace Ifcb.Platform;

/// <summary>
/// The one validator for names that become blob path segments, folder names or registry names: dataset, bin-set,
/// class and image file names, registered model names, aliases, train and model ids, run ids. A valid name is a single
/// path segment — never empty, <c>.</c>, <c>..</c>, absolute, or containing <c>/</c>, <c>\</c> or control characters —
/// so it can neither escape its folder nor collide with another path. Every service checks names here, at submission,
/// so a job never fails later on a name that was accepted.
/// </summary>
public static class ResourceName
{
    public const int MaxDatasetNameLength = 64;
    public const int MaxModelNameLength = 128;
    public const int MaxSegmentLength = 200;

    /// <summary>Dataset and bin-set names: 1–64 of <c>A-Z a-z 0-9 . _ -</c>, starting with a letter or digit.</summary>
    /// <exception cref="ArgumentException">With a message saying what to change.</exception>
    public static string ValidateDatasetName(string? name) => Validate(name, "dataset name", MaxDatasetNameLength, static c => false);

    /// <summary>
    /// Registry names and the ids that become them or become file names: registered model names, aliases,
    /// TRAIN_ID, model_id, register_as, RUN_ID. 1–128 of <c>A-Z a-z 0-9 . _ -</c>, starting with a letter or digit.
    /// </summary>
    /// <param name="what">How the caller calls the name in messages, e.g. "register_as".</param>
    /// <exception cref="ArgumentException">With a message saying what to change.</exception>
    public static string ValidateModelName(string? name, string what = "model name") =>
        Validate(name, what, MaxModelNameLength, static c => false);

    /// <summary>
    /// Class folder names: as dataset names (up to 200 chars) plus space and <c>( ) + , &amp; '</c>, common in IFCB
    /// class lists.
    /// </summary>
    /// <exception cref="ArgumentException">With a message saying what to change.</exception>
    public static string ValidateClassName(string? name) => Validate(name, "class name", MaxSegmentLength, IsExtraSegmentChar);

    /// <summary>Image file names: same character set as class names.</summary>
    /// <exception cref="ArgumentException">With a message saying what to change.</exception>
    public static string ValidateFileName(string? name) => Validate(name, "file name", MaxSegmentLength, IsExtraSegmentChar);

    public static bool IsValidDatasetName(string? name) =>
        TryValidate(name, "dataset name", MaxDatasetNameLength, static c => false) is null;

    public static bool IsValidModelName(string? name) => TryValidate(name, "model name", MaxModelNameLength, static c => false) is null;

    private static bool IsExtraSegmentChar(char c) => c is ' ' or '(' or ')' or '+' or ',' or '&' or '\'';

    private static string Validate(string? name, string what, int maxLength, Func<char, bool> extra)
    {
        var error = TryValidate(name, what, maxLength, extra);
        return error is null ? name! : throw new ArgumentException(error);
    }

    private static string? TryValidate(string? name, string what, int maxLength, Func<char, bool> extra)
    {
        var strict = !extra(' ');
        if (string.IsNullOrEmpty(name))
            return $"The {what} is empty; give 1-{maxLength} characters from A-Z a-z 0-9 . _ -.";
        if (name.Length > maxLength)
            return $"The {what} \"{Shorten(name)}\" has {name.Length} characters; the limit is {maxLength}.";
        if (name is "." or ".." || name.Contains("..", StringComparison.Ordinal))
            return $"The {what} \"{Shorten(name)}\" contains \"..\"; names must not refer to a parent folder.";
        if (Path.IsPathRooted(name) || name.Contains('/', StringComparison.Ordinal) || name.Contains('\\', StringComparison.Ordinal))
            return $"The {what} \"{Shorten(name)}\" contains a path separator or is absolute; give a single name without / or \\.";
        foreach (var c in name)
        {
            if (char.IsControl(c))
                return $"The {what} contains the control character U+{(int)c:X4}; remove it.";
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' || extra(c)))
                return $"The {what} \"{Shorten(name)}\" contains '{c}'; " +
                    $"allowed are A-Z a-z 0-9 . _ -{(strict ? "" : " space ( ) + , & '")}.";
        }
        if (strict && !char.IsAsciiLetterOrDigit(name[0]))
            return $"The {what} \"{Shorten(name)}\" must start with a letter or digit.";
        if (name[0] == ' ' || name[^1] == ' ')
            return $"The {what} \"{Shorten(name)}\" starts or ends with a space; trim it.";
        return null;
    }

    private static string Shorten(string s) => s.Length <= 40 ? s : s[..40] + "...";
}
