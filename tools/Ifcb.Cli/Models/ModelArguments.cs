using System.CommandLine;
using System.Globalization;
using System.Text.RegularExpressions;
using Ifcb.Protos;

namespace Ifcb.Cli;

/// <summary>What the <c>models</c> subcommands read from the command line: a model reference, KEY=VALUE pairs, metric conditions.</summary>
public static partial class ModelArguments
{
    /// <summary>The MODEL argument; its text is parsed by <see cref="Ifcb.Contracts.ModelRef"/>.</summary>
    public static Argument<string> Reference(string description = "NAME, NAME/VERSION, NAME/latest or NAME@ALIAS.") =>
        new("MODEL") { Description = description };

    /// <summary>Repeated KEY=VALUE flags (--tag, --metric) as pairs.</summary>
    public static IEnumerable<KeyValuePair<string, string>> KeyValues(string[]? pairs, string flag)
    {
        foreach (var pair in pairs ?? [])
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
                throw new UsageException($"{flag} {pair}: write KEY=VALUE.");
            yield return new(pair[..equals], pair[(equals + 1)..]);
        }
    }

    /// <summary>Parses a metric condition such as <c>f1_weighted&gt;=0.8</c>.</summary>
    public static MetricThreshold ParseThreshold(string condition)
    {
        var match = ThresholdPattern().Match(condition);
        if (!match.Success || !double.TryParse(match.Groups[3].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            throw new UsageException($"--metric {condition}: write NAME OP NUMBER with OP one of >= > <= < == != (e.g. f1_weighted>=0.8).");
        return new MetricThreshold { Metric = match.Groups[1].Value.Trim(), Op = match.Groups[2].Value, Value = value };
    }

    [GeneratedRegex(@"^\s*([^<>=!]+?)\s*(>=|<=|==|!=|>|<|=)\s*(\S+)\s*$")]
    private static partial Regex ThresholdPattern();
}
