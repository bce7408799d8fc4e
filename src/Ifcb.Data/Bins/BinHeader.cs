using System.Globalization;
using System.Text.RegularExpressions;

namespace Ifcb.Data.Bins;

/// <summary>
/// The <c>key: value</c> properties of a bin's <c>.hdr</c> file (pyifcb <c>ifcb/data/hdr.py</c>): v2 instruments write
/// one per line (<c>runTime: 1231.024861</c>); the 2010 acquisition software writes the run's times on one line
/// (<c>run time = 1231.0 s  inhibit time = 11.6 s</c>). v1 headers (quoted CSV of temperature and PMT settings) have
/// no properties that the platform uses and parse as empty. Keys compare case-insensitively, as pyifcb's <c>header()</c>.
/// </summary>
public sealed partial class BinHeader
{
    /// <summary>Real headers are a few KB; anything far bigger is not a header.</summary>
    public const long MaxBytes = 1L << 20;

    private readonly Dictionary<string, string> _properties;

    private BinHeader(Dictionary<string, string> properties) => _properties = properties;

    [GeneratedRegex(@"^run time = ([\d.]+) s\s+inhibit time = ([\d.]+)", RegexOptions.CultureInvariant)]
    private static partial Regex RunAndInhibitLine();

    public IReadOnlyDictionary<string, string> Properties => _properties;

    /// <summary><c>runTime</c> in seconds: how long the syringe ran for this bin; null when absent or not a number.</summary>
    public double? RunTime => Number("runTime");

    /// <summary><c>inhibitTime</c> in seconds: how much of the run the instrument could not trigger; null when absent.</summary>
    public double? InhibitTime => Number("inhibitTime");

    public double? Number(string key) =>
        _properties.TryGetValue(key, out var text)
        && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) ? value : null;

    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">The file is larger than <see cref="MaxBytes"/>.</exception>
    public static BinHeader Read(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var length = new FileInfo(path).Length;
        if (length > MaxBytes)
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                $"{path} is {length} bytes; a bin header is a few KB (limit {MaxBytes}), so this is not one."));
        return Parse(File.ReadLines(path));
    }

    public static BinHeader Parse(IEnumerable<string> lines)
    {
        ArgumentNullException.ThrowIfNull(lines);
        var properties = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var raw in lines)
        {
            var line = raw.TrimEnd();
            var times = RunAndInhibitLine().Match(line);
            if (times.Success)
            {
                properties["runTime"] = times.Groups[1].Value;
                properties["inhibitTime"] = times.Groups[2].Value;
                continue;
            }
            // pyifcb takes a line only if ": " splits it in exactly two; a value with its own ": " is not a property.
            var separator = line.IndexOf(": ", StringComparison.Ordinal);
            if (separator <= 0 || line.IndexOf(": ", separator + 2, StringComparison.Ordinal) >= 0)
                continue;
            properties[line[..separator].Trim()] = line[(separator + 2)..].Trim();
        }
        return new BinHeader(properties);
    }
}
