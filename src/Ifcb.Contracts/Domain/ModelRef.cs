using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ifcb.Contracts;

/// <summary>What a <see cref="ModelRef"/> selects within its model.</summary>
public enum ModelSelector
{
    /// <summary><c>NAME</c> alone: the model itself; where a version is needed, its newest READY version.</summary>
    Model,

    /// <summary><c>NAME/3</c>: that version number.</summary>
    Number,

    /// <summary><c>NAME@production</c>: the version an alias points at when it is resolved.</summary>
    Alias,

    /// <summary><c>NAME/latest</c>: the newest READY version.</summary>
    Latest,
}

/// <summary>
/// A reference to a registered model or one of its versions: the one grammar every part of the platform (CLI,
/// Training's RUN jobs, the Registry) parses, here and nowhere else.
/// <code>
///   reference := ["models:/"] NAME [ "/" VERSION | "/latest" | "@" ALIAS ]
///   NAME, ALIAS := one or more characters, none of them '/' or '@' (the Registry's naming rules apply on top)
///   VERSION     := 1 … 9999999, decimal digits only
/// </code>
/// Examples: <c>plankton</c>, <c>plankton/7</c>, <c>plankton/latest</c>, <c>plankton@production</c>,
/// <c>models:/plankton@production</c> (MLflow's URI form). <see cref="ToString"/> writes the canonical form (without
/// the prefix), which parses back to an equal reference; JSON (job records, bus messages) holds that text.
/// </summary>
[JsonConverter(typeof(ModelRefJsonConverter))]
public sealed record ModelRef
{
    /// <summary>Version numbers are zero-padded to seven digits in blob names, so this is the largest.</summary>
    public const int MaxVersion = 9_999_999;

    private const string UriPrefix = "models:/";

    private ModelRef(string name, ModelSelector selector, int? version, string? alias)
    {
        Name = name;
        Selector = selector;
        Version = version;
        Alias = alias;
    }

    public string Name { get; }

    public ModelSelector Selector { get; }

    /// <summary>The version number for <see cref="ModelSelector.Number"/>; null otherwise.</summary>
    public int? Version { get; }

    /// <summary>The alias for <see cref="ModelSelector.Alias"/>; null otherwise.</summary>
    public string? Alias { get; }

    /// <summary>True for NAME/N and NAME@ALIAS and NAME/latest: the reference names a version, not only a model.</summary>
    public bool SelectsVersion => Selector != ModelSelector.Model;

    /// <summary>True where resolving means "the newest READY version" (NAME alone or NAME/latest).</summary>
    public bool MeansLatest => Selector is ModelSelector.Model or ModelSelector.Latest;

    public static ModelRef ToModel(string name) => new(CheckName(name), ModelSelector.Model, null, null);

    public static ModelRef ToLatest(string name) => new(CheckName(name), ModelSelector.Latest, null, null);

    public static ModelRef ToVersion(string name, int version) =>
        version is >= 1 and <= MaxVersion
            ? new(CheckName(name), ModelSelector.Number, version, null)
            : throw new FormatException($"Version {version} of model '{name}' is out of range; versions run from 1 to {MaxVersion}.");

    public static ModelRef ToAlias(string name, string alias) =>
        new(CheckName(name), ModelSelector.Alias, null, CheckPart(alias, "alias", $"{name}@"));

    /// <exception cref="FormatException">Not a reference in the grammar above; the message shows the accepted forms.</exception>
    public static ModelRef Parse(string text) =>
        TryParse(text, out var reference, out var error) ? reference : throw new FormatException(error);

    public static bool TryParse(string? text, out ModelRef reference, out string error)
    {
        reference = null!;
        error = "";
        try
        {
            reference = ParseCore(text ?? "");
            return true;
        }
        catch (FormatException e)
        {
            error = e.Message;
            return false;
        }
    }

    private static ModelRef ParseCore(string text)
    {
        var body = text.StartsWith(UriPrefix, StringComparison.Ordinal) ? text[UriPrefix.Length..] : text;
        var at = body.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
            return ToAlias(CheckPart(body[..at], "model name", text), CheckPart(body[(at + 1)..], "alias", text));
        var slash = body.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
            return ToModel(CheckPart(body, "model name", text));
        var name = CheckPart(body[..slash], "model name", text);
        var selector = body[(slash + 1)..];
        if (selector == "latest")
            return ToLatest(name);
        if (int.TryParse(selector, NumberStyles.None, CultureInfo.InvariantCulture, out var version) && version is >= 1 and <= MaxVersion)
            return ToVersion(name, version);
        throw Malformed(text, $"'{selector}' after '/' is neither a version number (1 to {MaxVersion}) nor 'latest'");
    }

    private static string CheckName(string name) => CheckPart(name, "model name", name);

    private static string CheckPart(string part, string what, string text)
    {
        if (part.Length == 0)
            throw Malformed(text, $"the {what} is empty");
        if (part.Contains('/', StringComparison.Ordinal) || part.Contains('@', StringComparison.Ordinal))
            throw Malformed(text, $"the {what} '{part}' contains '/' or '@'");
        return part;
    }

    private static FormatException Malformed(string text, string why) =>
        new($"'{text}' is not a model reference ({why}); write NAME, NAME/VERSION, NAME/latest or NAME@ALIAS, " +
            "e.g. 'plankton/7' or 'plankton@production'.");

    /// <summary>The canonical text: NAME, NAME/7, NAME/latest or NAME@ALIAS.</summary>
    public override string ToString() => Selector switch
    {
        ModelSelector.Number => $"{Name}/{Version!.Value.ToString(CultureInfo.InvariantCulture)}",
        ModelSelector.Alias => $"{Name}@{Alias}",
        ModelSelector.Latest => $"{Name}/latest",
        _ => Name,
    };
}

/// <summary>A <see cref="ModelRef"/> in JSON is its canonical text.</summary>
public sealed class ModelRefJsonConverter : JsonConverter<ModelRef>
{
    public override ModelRef Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        ModelRef.TryParse(reader.GetString(), out var reference, out var error) ? reference : throw new JsonException(error);

    public override void Write(Utf8JsonWriter writer, ModelRef value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(value);
        writer.WriteStringValue(value.ToString());
    }
}
