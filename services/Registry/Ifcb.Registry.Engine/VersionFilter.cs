using System.Collections.Immutable;
using System.Globalization;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine;

/// <summary>Which versions a search returns. Every condition given must hold (AND); an empty filter matches all.</summary>
public sealed record VersionFilter
{
    /// <summary>Only versions of this model; null searches every model.</summary>
    public string? ModelName { get; init; }

    public ModelVersionStatus? Status { get; init; }

    /// <summary>Tags that must be present with exactly these values.</summary>
    public ImmutableSortedDictionary<string, string> Tags { get; init; } = ImmutableSortedDictionary<string, string>.Empty;

    /// <summary>Metric conditions such as <c>f1_weighted&gt;=0.8</c>; a version lacking the metric does not match.</summary>
    public ImmutableArray<MetricThreshold> Metrics { get; init; } = [];

    /// <summary>Conditions in MLflow's filter grammar (<see cref="SearchFilter.ForVersions"/>), ANDed with the fields above.</summary>
    public SearchFilter Expression { get; init; } = SearchFilter.Empty;

    public bool Matches(ModelVersion version)
    {
        ArgumentNullException.ThrowIfNull(version);
        return Matches(VersionIndexEntry.Of(version));
    }

    /// <summary>The same test on a version's searchable fields, as the search index keeps them.</summary>
    internal bool Matches(VersionIndexEntry entry) =>
        AdmitsModelName(entry.ModelName)
        && (Status is null || Status == entry.Status)
        && Tags.All(tag => entry.Tags.TryGetValue(tag.Key, out var value) && value == tag.Value)
        && Metrics.All(threshold => threshold.IsSatisfiedBy(entry.Metrics))
        && Expression.Matches(entry.ValueOf);

    /// <summary>Whether versions of the model named <paramref name="name"/> can match at all.</summary>
    internal bool AdmitsModelName(string name) => (ModelName is null || ModelName == name) && Expression.AdmitsModelName(name);
}

public enum ComparisonOperator
{
    Equal,
    NotEqual,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,

    /// <summary>SQL LIKE on text: % any run, _ one character (filter grammar only).</summary>
    Like,

    /// <summary>LIKE ignoring case (filter grammar only).</summary>
    ILike,
}

/// <summary>A condition on one metric, e.g. <c>MetricThreshold.Parse("f1_weighted&gt;=0.8")</c>.</summary>
public sealed record MetricThreshold(string Metric, ComparisonOperator Operator, double Value)
{
    // Longest operators first so ">=" is not read as ">" followed by "=0.8".
    private static readonly (string Symbol, ComparisonOperator Operator)[] Symbols =
    [
        (">=", ComparisonOperator.GreaterThanOrEqual),
        ("<=", ComparisonOperator.LessThanOrEqual),
        ("!=", ComparisonOperator.NotEqual),
        ("==", ComparisonOperator.Equal),
        (">", ComparisonOperator.GreaterThan),
        ("<", ComparisonOperator.LessThan),
        ("=", ComparisonOperator.Equal),
    ];

    /// <summary>Parses <c>metric OP number</c> with OP one of &gt;= &lt;= != == = &gt; &lt;; whitespace is allowed.</summary>
    public static MetricThreshold Parse(string expression)
    {
        ArgumentNullException.ThrowIfNull(expression);
        foreach (var (symbol, op) in Symbols)
        {
            var at = expression.IndexOf(symbol, StringComparison.Ordinal);
            if (at <= 0)
                continue;

            var metric = expression[..at].Trim();
            var number = expression[(at + symbol.Length)..].Trim();
            if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value))
            {
                throw new IfcbException(ErrorKind.InvalidArgument,
                    $"Metric condition '{expression}' must end in a finite number, e.g. 'f1_weighted>=0.8'.");
            }

            RegistryValidation.MetricName(metric);
            return new MetricThreshold(metric, op, value);
        }

        throw new IfcbException(ErrorKind.InvalidArgument,
            $"Metric condition '{expression}' needs the form 'metric OP number' with OP one of >=, <=, >, <, =, !=, " +
            "e.g. 'f1_weighted>=0.8'.");
    }

    public bool IsSatisfiedBy(IReadOnlyDictionary<string, double> metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        if (!metrics.TryGetValue(Metric, out var actual))
            return false;

        return Operator switch
        {
            ComparisonOperator.Equal => actual == Value,
            ComparisonOperator.NotEqual => actual != Value,
            ComparisonOperator.GreaterThan => actual > Value,
            ComparisonOperator.GreaterThanOrEqual => actual >= Value,
            ComparisonOperator.LessThan => actual < Value,
            ComparisonOperator.LessThanOrEqual => actual <= Value,
            _ => false,
        };
    }
}
