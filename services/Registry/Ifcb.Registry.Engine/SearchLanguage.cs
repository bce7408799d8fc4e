using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine;

/// <summary>What a search key names: an attribute of a version or model, or one entry of its tags, metrics or params.</summary>
public enum SearchKeyKind
{
    Name,
    Version,
    Status,
    CreationTime,
    LastUpdatedTime,
    Tag,
    Metric,
    Param,
}

/// <summary>
/// One key of a filter or an ordering, e.g. <c>metrics.f1_weighted</c> (<see cref="SearchKeyKind.Metric"/>, "f1_weighted").
/// <see cref="Key"/> is set for tags, metrics and params only.
/// </summary>
public sealed record SearchKey(SearchKeyKind Kind, string? Key = null)
{
    /// <summary>Version number, times and metrics compare as numbers; everything else as text.</summary>
    public bool IsNumeric => Kind is SearchKeyKind.Version or SearchKeyKind.CreationTime or SearchKeyKind.LastUpdatedTime
        or SearchKeyKind.Metric;

    /// <summary>The key as the filter grammar writes it (keys that are not plain words in backticks).</summary>
    public override string ToString() => Kind switch
    {
        SearchKeyKind.Name => "name",
        SearchKeyKind.Version => "version",
        SearchKeyKind.Status => "status",
        SearchKeyKind.CreationTime => "creation_time",
        SearchKeyKind.LastUpdatedTime => "last_updated_time",
        SearchKeyKind.Tag => "tags." + QuotedKey(),
        SearchKeyKind.Metric => "metrics." + QuotedKey(),
        _ => "params." + QuotedKey(),
    };

    private string QuotedKey() => Key is { } key && key.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-' or '/' or ':')
        ? key
        : $"`{Key}`";
}

/// <summary>A value in a condition or a sort key: text, a number, or neither (the version or model lacks it).</summary>
public readonly record struct SearchValue(string? Text, double? Number)
{
    public static SearchValue Missing => default;

    public bool IsMissing => Text is null && Number is null;

    public static SearchValue Of(string? text) => new(text, null);

    public static SearchValue Of(double number) => new(null, number);

    public static SearchValue Of(DateTimeOffset time) => new(null, time.ToUnixTimeMilliseconds());

    /// <summary>
    /// Sort order of two values of one key: numbers numerically, text ordinally; a missing value sorts after every
    /// present one in either direction, so versions lacking a metric come last whether it is sorted ASC or DESC.
    /// </summary>
    internal static int Compare(SearchValue a, SearchValue b, bool descending)
    {
        if (a.IsMissing || b.IsMissing)
            return a.IsMissing.CompareTo(b.IsMissing);

        var order = a.Number is { } x && b.Number is { } y ? x.CompareTo(y) : string.CompareOrdinal(a.Text, b.Text);
        return descending ? -order : order;
    }
}

/// <summary>One condition of a filter, e.g. <c>metrics.f1_weighted &gt;= 0.8</c>.</summary>
public sealed record SearchCondition(SearchKey Key, ComparisonOperator Operator, SearchValue Value)
{
    /// <summary>A version or model that lacks the key (tag, metric, param) never matches, whatever the operator (as in MLflow).</summary>
    public bool IsSatisfiedBy(SearchValue actual)
    {
        if (actual.IsMissing)
            return false;

        if (Key.IsNumeric)
        {
            if (actual.Number is not { } a || Value.Number is not { } b)
                return false;

            return Operator switch
            {
                ComparisonOperator.Equal => a == b,
                ComparisonOperator.NotEqual => a != b,
                ComparisonOperator.GreaterThan => a > b,
                ComparisonOperator.GreaterThanOrEqual => a >= b,
                ComparisonOperator.LessThan => a < b,
                ComparisonOperator.LessThanOrEqual => a <= b,
                _ => false,
            };
        }

        var text = actual.Text ?? "";
        var wanted = Value.Text ?? "";
        return Operator switch
        {
            ComparisonOperator.Equal => text == wanted,
            ComparisonOperator.NotEqual => text != wanted,
            ComparisonOperator.Like => LikePattern.Matches(text, wanted, ignoreCase: false),
            ComparisonOperator.ILike => LikePattern.Matches(text, wanted, ignoreCase: true),
            _ => false,
        };
    }

    public override string ToString()
    {
        var value = Value.Number is { } number
            ? number.ToString("R", CultureInfo.InvariantCulture)
            : $"'{Value.Text?.Replace("'", "''", StringComparison.Ordinal)}'";
        return $"{Key} {SearchGrammar.Symbol(Operator)} {value}";
    }
}

/// <summary>
/// A filter in MLflow's search grammar (the subset below), parsed once: conditions joined with AND, each
/// <c>KEY OPERATOR VALUE</c>. Keys: <c>name</c>, <c>tags.K</c> and, for versions, <c>version</c>, <c>status</c>,
/// <c>metrics.K</c>, <c>params.K</c>; <c>creation_time</c> and <c>last_updated_time</c> (Unix milliseconds; MLflow's
/// <c>creation_timestamp</c>/<c>last_updated_timestamp</c> are accepted too). Text keys take <c>= != LIKE ILIKE</c> and a
/// quoted value ('…' or "…", a quote doubled inside), status only = and != with READY, PENDING or FAILED; numeric keys take
/// <c>= != &gt; &gt;= &lt; &lt;=</c> and a number. LIKE's <c>%</c> matches any run, <c>_</c> one character, <c>\</c>
/// escapes either. A key with other characters is written in backticks: <c>tags.`my key`</c>.
/// </summary>
public sealed record SearchFilter
{
    public static SearchFilter Empty { get; } = new();

    public ImmutableArray<SearchCondition> Conditions { get; init; } = [];

    /// <summary>A filter over model versions. InvalidArgument, naming the position and token, when it does not parse.</summary>
    public static SearchFilter ForVersions(string? text) => new() { Conditions = SearchGrammar.ParseFilter(text, SearchTarget.Versions) };

    /// <summary>A filter over registered models (name, tags, times only).</summary>
    public static SearchFilter ForModels(string? text) => new() { Conditions = SearchGrammar.ParseFilter(text, SearchTarget.Models) };

    /// <summary>True when every condition holds for the values <paramref name="valueOf"/> gives.</summary>
    public bool Matches(Func<SearchKey, SearchValue> valueOf)
    {
        ArgumentNullException.ThrowIfNull(valueOf);
        return Conditions.All(condition => condition.IsSatisfiedBy(valueOf(condition.Key)));
    }

    /// <summary>Whether a model name can match the name conditions (lets a search skip other models unread).</summary>
    public bool AdmitsModelName(string name) =>
        Conditions.Where(c => c.Key.Kind == SearchKeyKind.Name).All(c => c.IsSatisfiedBy(SearchValue.Of(name)));

    /// <summary>The filter in canonical form (what page tokens are bound to).</summary>
    public override string ToString() => string.Join(" AND ", Conditions);
}

/// <summary>One key of an ordering, e.g. <c>metrics.f1_weighted DESC</c>.</summary>
public sealed record SearchOrderKey(SearchKey Key, bool Descending)
{
    public override string ToString() => $"{Key} {(Descending ? "DESC" : "ASC")}";
}

/// <summary>
/// An ordering (MLflow's order_by): keys separated by commas, each optionally followed by ASC (the default) or DESC, e.g.
/// <c>metrics.f1_weighted DESC, creation_time ASC</c>. Ties, and everything when no key is given, fall back to model name
/// then version number ascending, so the order is total and page tokens are stable.
/// </summary>
public sealed record SearchOrder
{
    public static SearchOrder Default { get; } = new();

    public ImmutableArray<SearchOrderKey> Keys { get; init; } = [];

    /// <summary>
    /// An ordering of versions: name, version, status, creation_time, last_updated_time, metrics.K, tags.K, params.K.
    /// </summary>
    public static SearchOrder ForVersions(string? text) => new() { Keys = SearchGrammar.ParseOrder(text, SearchTarget.Versions) };

    /// <summary>An ordering of models: name, creation_time, last_updated_time.</summary>
    public static SearchOrder ForModels(string? text) => new() { Keys = SearchGrammar.ParseOrder(text, SearchTarget.Models) };

    /// <summary>The values of this ordering's keys, in order, as <paramref name="valueOf"/> gives them.</summary>
    internal ImmutableArray<SearchValue> ValuesOf(Func<SearchKey, SearchValue> valueOf) => [.. Keys.Select(k => valueOf(k.Key))];

    /// <summary>Compares two rows' key values (from <see cref="ValuesOf"/>); 0 when every key ties.</summary>
    internal int Compare(ImmutableArray<SearchValue> a, ImmutableArray<SearchValue> b)
    {
        for (var i = 0; i < Keys.Length; i++)
        {
            var order = SearchValue.Compare(a[i], b[i], Keys[i].Descending);
            if (order != 0)
                return order;
        }

        return 0;
    }

    public override string ToString() => string.Join(", ", Keys);
}

/// <summary>What a filter or ordering is about: which keys it may name.</summary>
internal enum SearchTarget
{
    Versions,
    Models,
}

/// <summary>
/// The tokenizer and parser behind <see cref="SearchFilter"/> and <see cref="SearchOrder"/>. Every error is InvalidArgument
/// and names the 1-based character position and the token it stopped at.
/// </summary>
internal static class SearchGrammar
{
    public const int MaxConditions = 64;
    public const int MaxOrderKeys = 8;
    public const int MaxTextLength = 10_000;

    /// <summary>The params a version has: its metadata that is not a tag or metric (all compared as text).</summary>
    public static readonly ImmutableArray<string> VersionParams =
        ["arch", "pretrained", "resize", "img_norm", "dataset_fingerprint", "source_training_job", "source_commit"];

    private enum TokenKind
    {
        Word,
        Key,
        Text,
        Number,
        Operator,
        Comma,
        End,
    }

    private readonly record struct Token(TokenKind Kind, string Text, int Position, string Source)
    {
        /// <summary>Keywords are words compared without case (AND, LIKE, ILIKE, ASC, DESC).</summary>
        public bool Is(string keyword) => Kind == TokenKind.Word && string.Equals(Text, keyword, StringComparison.OrdinalIgnoreCase);

        public string Shown => Kind == TokenKind.End ? "end of input" : $"'{Source}'";
    }

    public static ImmutableArray<SearchCondition> ParseFilter(string? text, SearchTarget target)
    {
        var tokens = Tokenize(text, "filter");
        var conditions = ImmutableArray.CreateBuilder<SearchCondition>();
        var at = 0;
        if (tokens[0].Kind == TokenKind.End)
            return [];

        while (true)
        {
            var keyToken = tokens[at++];
            var key = ResolveKey(keyToken, target, "filter");
            var opToken = tokens[at++];
            var op = Operator(opToken);
            var valueToken = tokens[at++];
            conditions.Add(Condition(key, keyToken, op, opToken, valueToken));
            if (conditions.Count > MaxConditions)
                throw Error("filter", keyToken, $"a filter may have at most {MaxConditions} conditions.");

            var next = tokens[at++];
            if (next.Kind == TokenKind.End)
                return conditions.ToImmutable();

            if (!next.Is("AND"))
            {
                var problem = next.Is("OR") || next.Is("NOT") || next.Is("IN") || next.Is("IS")
                    ? $"{next.Text.ToUpperInvariant()} is not supported; conditions may only be joined with AND."
                    : "expected AND or the end of the filter after a condition.";
                throw Error("filter", next, problem);
            }

            if (tokens[at].Kind == TokenKind.End)
                throw Error("filter", tokens[at], "expected a condition after AND.");
        }
    }

    public static ImmutableArray<SearchOrderKey> ParseOrder(string? text, SearchTarget target)
    {
        var tokens = Tokenize(text, "order_by");
        var keys = ImmutableArray.CreateBuilder<SearchOrderKey>();
        if (tokens[0].Kind == TokenKind.End)
            return [];

        var at = 0;
        while (true)
        {
            var keyToken = tokens[at++];
            var key = ResolveKey(keyToken, target, "order_by");
            if (!Sortable(key, target))
            {
                throw Error("order_by", keyToken, target == SearchTarget.Models
                    ? "models can be ordered by name, creation_time or last_updated_time."
                    : "versions can be ordered by name, version, status, creation_time, last_updated_time, metrics.K, tags.K or params.K.");
            }

            if (keys.Any(k => k.Key == key))
                throw Error("order_by", keyToken, $"{key} is already a sort key.");

            var descending = false;
            var next = tokens[at++];
            if (next.Is("ASC") || next.Is("DESC"))
            {
                descending = next.Is("DESC");
                next = tokens[at++];
            }

            keys.Add(new SearchOrderKey(key, descending));
            if (keys.Count > MaxOrderKeys)
                throw Error("order_by", keyToken, $"at most {MaxOrderKeys} sort keys are allowed.");

            if (next.Kind == TokenKind.End)
                return keys.ToImmutable();

            if (next.Kind != TokenKind.Comma)
                throw Error("order_by", next, "expected ASC, DESC, a comma or the end after a sort key.");
        }
    }

    public static string Symbol(ComparisonOperator op) => op switch
    {
        ComparisonOperator.Equal => "=",
        ComparisonOperator.NotEqual => "!=",
        ComparisonOperator.GreaterThan => ">",
        ComparisonOperator.GreaterThanOrEqual => ">=",
        ComparisonOperator.LessThan => "<",
        ComparisonOperator.LessThanOrEqual => "<=",
        ComparisonOperator.Like => "LIKE",
        _ => "ILIKE",
    };

    private static bool Sortable(SearchKey key, SearchTarget target) =>
        target == SearchTarget.Versions || key.Kind is SearchKeyKind.Name or SearchKeyKind.CreationTime or SearchKeyKind.LastUpdatedTime;

    private static SearchKey ResolveKey(Token token, SearchTarget target, string what)
    {
        var keys = target == SearchTarget.Models
            ? "name, tags.KEY, creation_time or last_updated_time"
            : "name, version, status, tags.KEY, metrics.KEY, params.KEY, creation_time or last_updated_time";
        if (token.Kind == TokenKind.Key)
        {
            var dot = token.Text.IndexOf('.', StringComparison.Ordinal);
            var (prefix, name) = (token.Text[..dot].ToLowerInvariant(), token.Text[(dot + 1)..]);
            var kind = prefix switch
            {
                "tags" or "tag" => SearchKeyKind.Tag,
                "metrics" or "metric" when target == SearchTarget.Versions => SearchKeyKind.Metric,
                "params" or "param" when target == SearchTarget.Versions => SearchKeyKind.Param,
                _ => throw Error(what, token, $"unknown key; use {keys}."),
            };
            CheckKeyName(name, token, what, kind == SearchKeyKind.Tag ? "tag key" : kind == SearchKeyKind.Metric ? "metric name" : "param");
            if (kind == SearchKeyKind.Param && !VersionParams.Contains(name))
                throw Error(what, token, $"versions have the params {string.Join(", ", VersionParams)}.");

            return new SearchKey(kind, name);
        }

        if (token.Kind != TokenKind.Word || token.Is("AND"))
            throw Error(what, token, $"expected a key: {keys}.");

        return token.Text.ToLowerInvariant() switch
        {
            "name" => new SearchKey(SearchKeyKind.Name),
            "version" or "version_number" when target == SearchTarget.Versions => new SearchKey(SearchKeyKind.Version),
            "status" when target == SearchTarget.Versions => new SearchKey(SearchKeyKind.Status),
            "creation_time" or "creation_timestamp" => new SearchKey(SearchKeyKind.CreationTime),
            "last_updated_time" or "last_updated_timestamp" => new SearchKey(SearchKeyKind.LastUpdatedTime),
            _ => throw Error(what, token, $"unknown key; use {keys}."),
        };
    }

    private static void CheckKeyName(string name, Token token, string what, string noun)
    {
        try
        {
            RegistryValidation.TagKey(name);
        }
        catch (IfcbException e)
        {
            throw Error(what, token, $"not a valid {noun}: {e.Message}");
        }
    }

    private static ComparisonOperator Operator(Token token)
    {
        if (token.Is("LIKE"))
            return ComparisonOperator.Like;
        if (token.Is("ILIKE"))
            return ComparisonOperator.ILike;

        return token.Kind != TokenKind.Operator
            ? throw Error("filter", token, "expected a comparison operator: =, !=, >, >=, <, <=, LIKE or ILIKE.")
            : token.Text switch
            {
                "=" or "==" => ComparisonOperator.Equal,
                "!=" or "<>" => ComparisonOperator.NotEqual,
                ">" => ComparisonOperator.GreaterThan,
                ">=" => ComparisonOperator.GreaterThanOrEqual,
                "<" => ComparisonOperator.LessThan,
                _ => ComparisonOperator.LessThanOrEqual,
            };
    }

    private static SearchCondition Condition(SearchKey key, Token keyToken, ComparisonOperator op, Token opToken, Token value)
    {
        if (value.Kind is not (TokenKind.Text or TokenKind.Number))
            throw Error("filter", value, "expected a value: a quoted 'text' or a number.");

        if (key.IsNumeric)
        {
            if (op is ComparisonOperator.Like or ComparisonOperator.ILike)
                throw Error("filter", opToken, $"{key} is a number; compare it with =, !=, >, >=, < or <=.");
            if (value.Kind != TokenKind.Number)
                throw Error("filter", value, $"{key} is a number; compare it with a number, without quotes.");

            return new SearchCondition(key, op, SearchValue.Of(double.Parse(value.Text, CultureInfo.InvariantCulture)));
        }

        if (value.Kind != TokenKind.Text)
            throw Error("filter", value, $"{key} is text; put the value in quotes, e.g. {keyToken.Source} = '{value.Text}'.");

        if (key.Kind == SearchKeyKind.Status)
        {
            if (op is not (ComparisonOperator.Equal or ComparisonOperator.NotEqual))
                throw Error("filter", opToken, "status takes = or != only.");
            if (!Enum.TryParse<ModelVersionStatus>(value.Text, ignoreCase: true, out var status) || !Enum.IsDefined(status)
                || value.Text.Any(char.IsDigit))
            {
                throw Error("filter", value, "status is one of 'READY', 'PENDING' or 'FAILED'.");
            }

            return new SearchCondition(key, op, SearchValue.Of(status.ToString().ToUpperInvariant()));
        }

        if (op is not (ComparisonOperator.Equal or ComparisonOperator.NotEqual or ComparisonOperator.Like or ComparisonOperator.ILike))
            throw Error("filter", opToken, $"{key} is text; compare it with =, !=, LIKE or ILIKE.");

        return new SearchCondition(key, op, SearchValue.Of(value.Text));
    }

    private static List<Token> Tokenize(string? text, string what)
    {
        var tokens = new List<Token>();
        text ??= "";
        if (text.Length > MaxTextLength)
            throw IfcbException.InvalidArgument($"The {what} is {text.Length} characters; the limit is {MaxTextLength}.");

        var i = 0;
        while (true)
        {
            while (i < text.Length && char.IsWhiteSpace(text[i]))
                i++;

            if (i == text.Length)
            {
                // Padding with End tokens lets the parser read ahead without bounds checks.
                for (var pad = 0; pad < 4; pad++)
                    tokens.Add(new Token(TokenKind.End, "", text.Length + 1, ""));
                return tokens;
            }

            var start = i;
            var c = text[i];
            Token token;
            if (char.IsAsciiLetter(c) || c == '_')
            {
                while (i < text.Length && (char.IsAsciiLetterOrDigit(text[i]) || text[i] == '_'))
                    i++;

                if (i < text.Length && text[i] == '.')
                {
                    var prefix = text[start..i];
                    var key = ReadKeyName(text, ref i, start, what);
                    token = new Token(TokenKind.Key, $"{prefix}.{key}", start + 1, text[start..i]);
                }
                else
                {
                    token = new Token(TokenKind.Word, text[start..i], start + 1, text[start..i]);
                }
            }
            else if (c is '\'' or '"')
            {
                token = ReadText(text, ref i, what);
            }
            else if (StartsNumber(text, i))
            {
                i++;
                while (i < text.Length && (char.IsAsciiLetterOrDigit(text[i]) || text[i] == '.'
                    || (text[i] is '-' or '+' && text[i - 1] is 'e' or 'E')))
                {
                    i++;
                }

                var number = text[start..i];
                if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value))
                    throw Error(what, new Token(TokenKind.Number, number, start + 1, number), "not a finite number.");
                token = new Token(TokenKind.Number, number, start + 1, number);
            }
            else if (c is '=' or '!' or '<' or '>')
            {
                i++;
                if (i < text.Length && (text[i] == '=' || (c == '<' && text[i] == '>')))
                    i++;

                var symbol = text[start..i];
                if (symbol == "!")
                    throw Error(what, new Token(TokenKind.Operator, symbol, start + 1, symbol), "did you mean '!='?");
                token = new Token(TokenKind.Operator, symbol, start + 1, symbol);
            }
            else if (c == ',')
            {
                i++;
                token = new Token(TokenKind.Comma, ",", start + 1, ",");
            }
            else
            {
                var shown = c.ToString();
                throw Error(what, new Token(TokenKind.Word, shown, start + 1, shown), "unexpected character.");
            }

            tokens.Add(token);
        }
    }

    /// <summary>A digit, or a sign or dot followed by a digit (or a sign followed by a dot).</summary>
    private static bool StartsNumber(string text, int i) =>
        char.IsAsciiDigit(text[i])
        || (text[i] is '-' or '+' or '.' && i + 1 < text.Length && (char.IsAsciiDigit(text[i + 1]) || text[i + 1] == '.'));

    /// <summary>After "prefix.": a plain key (letters, digits, _ . - / :) or a `backtick-quoted` one; returns the key.</summary>
    private static string ReadKeyName(string text, ref int i, int start, string what)
    {
        i++; // the dot
        if (i < text.Length && text[i] == '`')
        {
            var close = text.IndexOf('`', i + 1);
            if (close < 0)
            {
                var shown = text[start..];
                throw Error(what, new Token(TokenKind.Key, shown, start + 1, shown), "the backtick-quoted key is not closed.");
            }

            var quoted = text[(i + 1)..close];
            i = close + 1;
            return quoted;
        }

        var keyStart = i;
        while (i < text.Length && (char.IsAsciiLetterOrDigit(text[i]) || text[i] is '_' or '.' or '-' or '/' or ':'))
            i++;

        if (i == keyStart)
        {
            var shown = text[start..i];
            throw Error(what, new Token(TokenKind.Key, shown, start + 1, shown), "expected a key name after the dot.");
        }

        return text[keyStart..i];
    }

    /// <summary>A '…' or "…" literal; the quote character doubled inside stands for itself.</summary>
    private static Token ReadText(string text, ref int i, string what)
    {
        var start = i;
        var quote = text[i++];
        var value = new StringBuilder();
        while (true)
        {
            if (i == text.Length)
            {
                var shown = text[start..];
                throw Error(what, new Token(TokenKind.Text, shown, start + 1, shown), $"the text is not closed with {quote}.");
            }

            if (text[i] == quote)
            {
                if (i + 1 < text.Length && text[i + 1] == quote)
                {
                    value.Append(quote);
                    i += 2;
                    continue;
                }

                i++;
                return new Token(TokenKind.Text, value.ToString(), start + 1, text[start..i]);
            }

            value.Append(text[i++]);
        }
    }

    private static IfcbException Error(string what, Token token, string problem) =>
        IfcbException.InvalidArgument(string.Create(CultureInfo.InvariantCulture,
            $"Invalid {what} at position {token.Position}, {token.Shown}: {problem}"));
}

/// <summary>SQL LIKE matching: % matches any run of characters, _ exactly one, a backslash makes the next one literal.</summary>
internal static class LikePattern
{
    public static bool Matches(string text, string pattern, bool ignoreCase)
    {
        // Greedy matching that backtracks only to the last %: linear for typical patterns, O(n·m) at worst, never exponential.
        int t = 0, p = 0, starP = -1, starT = 0;
        while (t < text.Length)
        {
            if (p < pattern.Length && pattern[p] == '%')
            {
                starP = ++p;
                starT = t;
                continue;
            }

            if (p < pattern.Length && Single(text[t], pattern, ref p, ignoreCase))
            {
                t++;
                continue;
            }

            if (starP < 0)
                return false;

            p = starP;
            t = ++starT;
        }

        while (p < pattern.Length && pattern[p] == '%')
            p++;

        return p == pattern.Length;
    }

    /// <summary>Whether the pattern element at <paramref name="p"/> matches <paramref name="c"/>; advances past it if so.</summary>
    private static bool Single(char c, string pattern, ref int p, bool ignoreCase)
    {
        var escaped = pattern[p] == '\\' && p + 1 < pattern.Length;
        var wanted = escaped ? pattern[p + 1] : pattern[p];
        var matches = (!escaped && wanted == '_')
            || (ignoreCase ? char.ToUpperInvariant(c) == char.ToUpperInvariant(wanted) : c == wanted);
        if (matches)
            p += escaped ? 2 : 1;

        return matches;
    }
}
