namespace Ifcb.Data.Imaging;

/// <summary>
/// neuston's <c>--flip</c> augmentation, each flip with p = 0.5 and applied before the resize.
/// neuston's <c>x</c> is a <em>vertical</em> flip (top-bottom, <c>RandomVerticalFlip</c>) and <c>y</c> a horizontal one.
/// </summary>
public enum FlipMode
{
    None = 0,

    /// <summary>neuston <c>x</c>: top-bottom flip with p = 0.5.</summary>
    Vertical,

    /// <summary>neuston <c>y</c>: left-right flip with p = 0.5.</summary>
    Horizontal,

    /// <summary>neuston <c>xy</c>: both, drawn independently, vertical first.</summary>
    Both,
}

/// <summary>A flip mode and whether it also applies to validation images (neuston's <c>+V</c> suffix).</summary>
public sealed record FlipOption(FlipMode Mode, bool ApplyToValidation)
{
    public static FlipOption None { get; } = new(FlipMode.None, false);

    /// <summary>
    /// Parses neuston's <c>--flip</c> value: <c>x</c>, <c>y</c>, <c>xy</c>, each optionally with <c>+V</c>; null or
    /// empty = no flips.
    /// </summary>
    /// <exception cref="ArgumentException">Any other value.</exception>
    public static FlipOption Parse(string? value)
    {
        if (string.IsNullOrEmpty(value))
            return None;
        var validation = value.EndsWith("+V", StringComparison.Ordinal);
        var mode = (validation ? value[..^2] : value) switch
        {
            "x" => FlipMode.Vertical,
            "y" => FlipMode.Horizontal,
            "xy" => FlipMode.Both,
            _ => throw new ArgumentException($"--flip \"{value}\" is not one of x, y, xy, x+V, y+V, xy+V.", nameof(value)),
        };
        return new FlipOption(mode, validation);
    }

    /// <summary>neuston's spelling, e.g. <c>xy+V</c>; empty for none.</summary>
    public override string ToString() => Mode switch
    {
        FlipMode.None => "",
        FlipMode.Vertical => "x",
        FlipMode.Horizontal => "y",
        _ => "xy",
    } + (ApplyToValidation && Mode != FlipMode.None ? "+V" : "");
}
