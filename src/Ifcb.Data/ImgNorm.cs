using System.Globalization;

namespace Ifcb.Data;

/// <summary>
/// Per-channel image normalisation, neuston's <c>--img-norm MEAN STD</c>: <c>x' = (x - mean[c]) / std[c]</c> on [0,1] pixels.
/// Each of MEAN and STD is one value (repeated for the three channels) or three comma-separated values.
/// This is the one place that parses and validates an img-norm; the model stores it and applies it at training and
/// inference alike (neuston forgets it for <c>RUN --type img</c>; we do not).
/// </summary>
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

    /// <summary>Parses the two neuston strings, e.g. <c>("0.667", "0.161")</c> or <c>("0.056,0.058,0.051", "0.067,0.071,0.057")</c>.</summary>
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
            throw new FormatException($"img-norm {what} \"{text}\" has {parts.Length} values; give one number or three comma-separated numbers.");
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

    /// <summary>
    /// Returns a new tensor <c>(x - mean) / std</c> for a float tensor shaped [3,H,W] or [B,3,H,W]; the caller owns it.
    /// </summary>
    public TorchSharp.torch.Tensor Apply(TorchSharp.torch.Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        var channelDim = images.dim() switch
        {
            3 => 0,
            4 => 1,
            _ => throw new ArgumentException($"Expected a [3,H,W] or [B,3,H,W] tensor, got {images.dim()} dimensions.", nameof(images)),
        };
        if (images.shape[channelDim] != 3)
            throw new ArgumentException($"Expected 3 channels, got {images.shape[channelDim]}.", nameof(images));
        long[] shape = channelDim == 0 ? [3, 1, 1] : [1, 3, 1, 1];
        using var mean = TorchSharp.torch.tensor(Mean.Select(m => (float)m).ToArray(), dtype: images.dtype, device: images.device).reshape(shape);
        using var std = TorchSharp.torch.tensor(Std.Select(s => (float)s).ToArray(), dtype: images.dtype, device: images.device).reshape(shape);
        using var centred = images.sub(mean);
        return centred.div(std);
    }

    public bool Equals(ImgNorm? other) =>
        other is not null && Mean.SequenceEqual(other.Mean) && Std.SequenceEqual(other.Std);

    public override int GetHashCode() => HashCode.Combine(Mean[0], Mean[1], Mean[2], Std[0], Std[1], Std[2]);
}
