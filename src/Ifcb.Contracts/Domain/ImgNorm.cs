using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ifcb.Contracts;

/// <summary>
/// Per-channel image normalisation, neuston's <c>--img-norm MEAN STD</c>: <c>x' = (x - mean[c]) / std[c]</c> on [0,1] pixels.
/// Each of MEAN and STD is one value (repeated for the three channels) or three comma-separated values.
/// This is the one place that parses, validates and writes an img-norm: its one text form is <c>"MEAN STD"</c>
/// (<see cref="ToString"/>, also its JSON in job records and bus messages). The model stores it and applies it at
/// training and inference alike (neuston forgets it for <c>RUN --type img</c>; we do not); the tensor form of
/// <see cref="ApplyInPlace"/> is <c>Ifcb.Data.ImgNormTensors.Apply</c>.
/// </summary>
[JsonConverter(typeof(ImgNormJsonConverter))]
public sealed record ImgNorm
{
    public IReadOnlyList<double> Mean { get; }
    public IReadOnlyList<double> Std { get; }

    public ImgNorm(IReadOnlyList<double> mean, IReadOnlyList<double> std)
    {
        Mean = Expand(mean, "MEAN");
        Std = Expand(std, "STD");
        for (var c = 0; c < 3; c++)
        {
            if (!double.IsFinite(Mean[c]))
                throw new FormatException($"img-norm MEAN[{c}] is {Mean[c]}; it must be a finite number (typically 0..1).");
            if (!double.IsFinite(Std[c]) || Std[c] <= 0)
                throw new FormatException($"img-norm STD[{c}] is {Std[c]}; it must be a finite number greater than 0.");
        }
    }

    /// <summary>
    /// Parses the two neuston strings, e.g. <c>("0.667", "0.161")</c> or
    /// <c>("0.056,0.058,0.051", "0.067,0.071,0.057")</c>.
    /// </summary>
    public static ImgNorm Parse(string mean, string std) => new(ParseValues(mean, "MEAN"), ParseValues(std, "STD"));

    /// <summary>Parses <c>"MEAN STD"</c> as one string (whitespace-separated), as typed after <c>--img-norm</c>.</summary>
    public static ImgNorm Parse(string meanAndStd)
    {
        ArgumentNullException.ThrowIfNull(meanAndStd);
        var parts = meanAndStd.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != 2)
            throw new FormatException(
                $"img-norm \"{meanAndStd}\" must be two values, MEAN and STD, each one number or three comma-separated numbers, " +
                "e.g. \"0.667 0.161\" or \"0.056,0.058,0.051 0.067,0.071,0.057\".");
        return Parse(parts[0], parts[1]);
    }

    public static bool TryParse(string meanAndStd, out ImgNorm? norm, out string? error)
    {
        try
        {
            norm = Parse(meanAndStd);
            error = null;
            return true;
        }
        catch (FormatException e)
        {
            norm = null;
            error = e.Message;
            return false;
        }
    }

    /// <summary>The two strings neuston stores in hparams (<c>img_norm: [MEAN_STR, STD_STR]</c>), shortest round-trip form.</summary>
    public (string Mean, string Std) ToNeustonStrings() => (Format(Mean), Format(Std));

    /// <summary>The ready-to-paste command-line value, e.g. <c>0.65695 0.22312</c>.</summary>
    public override string ToString()
    {
        var (m, s) = ToNeustonStrings();
        return $"{m} {s}";
    }

    private static string Format(IReadOnlyList<double> v) =>
        v[0] == v[1] && v[1] == v[2]
            ? v[0].ToString("R", CultureInfo.InvariantCulture)
            : string.Join(',', v.Select(x => x.ToString("R", CultureInfo.InvariantCulture)));

    private static double[] ParseValues(string text, string what)
    {
        if (string.IsNullOrWhiteSpace(text))
            throw new FormatException($"img-norm {what} is empty; give one number or three comma-separated numbers.");
        var parts = text.Split(',');
        if (parts.Length is not (1 or 3))
            throw new FormatException(
                $"img-norm {what} \"{text}\" has {parts.Length} values; give one number or three comma-separated numbers.");
        var values = new double[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!double.TryParse(parts[i].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]))
                throw new FormatException($"img-norm {what} \"{text}\": \"{parts[i]}\" is not a number.");
        }
        return values;
    }

    private static double[] Expand(IReadOnlyList<double> values, string what) => values.Count switch
    {
        1 => [values[0], values[0], values[0]],
        3 => [values[0], values[1], values[2]],
        _ => throw new FormatException($"img-norm {what} has {values.Count} values; give one or three."),
    };

    /// <summary>
    /// Normalises a CHW float image (length 3*H*W) in place, as torchvision's <c>Normalize</c> does in float32:
    /// <c>(x - mean[c]) / std[c]</c>.
    /// </summary>
    public void ApplyInPlace(Span<float> chw)
    {
        if (chw.Length % 3 != 0)
            throw new ArgumentException($"A CHW image with 3 channels has a length divisible by 3; got {chw.Length}.", nameof(chw));
        var plane = chw.Length / 3;
        for (var c = 0; c < 3; c++)
        {
            var mean = (float)Mean[c];
            var std = (float)Std[c];
            var channel = chw.Slice(c * plane, plane);
            for (var i = 0; i < channel.Length; i++)
                channel[i] = (channel[i] - mean) / std;
        }
    }

    public bool Equals(ImgNorm? other) =>
        other is not null && Mean.SequenceEqual(other.Mean) && Std.SequenceEqual(other.Std);

    public override int GetHashCode() => HashCode.Combine(Mean[0], Mean[1], Mean[2], Std[0], Std[1], Std[2]);
}

/// <summary>
/// An <see cref="ImgNorm"/> in JSON is its text form, <c>"MEAN STD"</c>. Registry documents written before this type
/// existed hold <c>{"Mean": "0.667", "Std": "0.161"}</c> (neuston's two strings); those are still read.
/// </summary>
public sealed class ImgNormJsonConverter : JsonConverter<ImgNorm>
{
    public override ImgNorm Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.StartObject)
        {
            using var legacy = JsonDocument.ParseValue(ref reader);
            string? Field(string name) => legacy.RootElement.EnumerateObject()
                .FirstOrDefault(p => p.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).Value is { ValueKind: JsonValueKind.String } v
                ? v.GetString()
                : null;
            return Parse(Field("Mean") is { } mean && Field("Std") is { } std ? $"{mean} {std}" : "");
        }
        return Parse(reader.GetString() ?? "");
    }

    private static ImgNorm Parse(string text) =>
        ImgNorm.TryParse(text, out var norm, out var error) ? norm! : throw new JsonException(error);

    public override void Write(Utf8JsonWriter writer, ImgNorm value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(value);
        writer.WriteStringValue(value.ToString());
    }
}
