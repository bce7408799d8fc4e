using System.Globalization;
using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ifcb.Platform.Checkpoints;

/// <summary>
/// A checkpoint's img-norm as its <c>hparams.json</c> stores it (per-channel mean and std, 1 or 3 values each): a file
/// format that stays as neuston writes it; <see cref="ToImgNorm"/> gives the platform's one type.
/// </summary>
public sealed record CheckpointImgNorm(double[] Mean, double[] Std)
{
    /// <exception cref="FormatException">The stored values are not a valid img-norm.</exception>
    public Ifcb.Contracts.ImgNorm ToImgNorm() => new(Mean, Std);
}

/// <summary>
/// The <c>hparams.json</c> of an <c>.ifcbmodel</c> checkpoint (a zip of <c>hparams.json</c> + <c>state_dict.pth</c>),
/// read without libtorch: what the Registry checks an upload against, what <c>ifcb models register</c> sends as
/// metadata, and what the model loader validates before it allocates anything. Every field is bounded (see
/// <see cref="Limits"/>), so a crafted checkpoint cannot make a reader allocate more than a few megabytes.
/// </summary>
public sealed record CheckpointHeader
{
    public const string HparamsEntry = "hparams.json";
    public const string WeightsEntry = "state_dict.pth";

    /// <summary>Format marker in hparams.json, bumped on incompatible changes.</summary>
    public const int CurrentFormatVersion = 1;

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        MaxDepth = 16,
    };

    public int FormatVersion { get; init; } = CurrentFormatVersion;
    public required string Arch { get; init; }
    /// <summary>Class labels in output-index order.</summary>
    public required string[] Classes { get; init; }
    public int Resize { get; init; }
    public CheckpointImgNorm? ImgNorm { get; init; }
    public bool Pretrained { get; init; }
    public long Seed { get; init; }
    public string ModelId { get; init; } = "";
    public string TrainingId { get; init; } = "";
    public string? DatasetFingerprint { get; init; }
    public DateTimeOffset Created { get; init; }
    public string PlatformVersion { get; init; } = "";
    public Dictionary<string, string>? Extras { get; init; }

    /// <summary>
    /// Per-class score thresholds in class order (<c>class_thresholds</c>; absent in checkpoints written before them): a
    /// ROI whose winning score is below its class's threshold is labelled <c>unclassified</c>; null entries have none.
    /// Left out of the file when null, so a checkpoint without thresholds stays byte for byte what format 1 always wrote.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double?[]? ClassThresholds { get; init; }

    /// <summary>
    /// Reads and checks hparams.json from a checkpoint. The stream must be seekable (a file, a buffer, or a blob opened
    /// with OpenRead): only the zip's central directory and the hparams entry are read, never the weights.
    /// </summary>
    /// <exception cref="InvalidDataException">
    /// Not a checkpoint, or hparams.json is malformed or out of bounds; the message says which field.
    /// </exception>
    public static CheckpointHeader Read(Stream checkpoint)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        if (!checkpoint.CanSeek)
            throw new ArgumentException("The checkpoint stream must be seekable (the zip directory is at its end).", nameof(checkpoint));
        ZipArchive zip;
        try
        {
            zip = new ZipArchive(checkpoint, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"Not a model checkpoint (expected a zip with {HparamsEntry} and {WeightsEntry}).", e);
        }
        using (zip)
        {
            var entry = zip.GetEntry(HparamsEntry) ?? throw new InvalidDataException($"The checkpoint has no {HparamsEntry}.");
            if (zip.GetEntry(WeightsEntry) is null)
                throw new InvalidDataException($"The checkpoint has no {WeightsEntry}.");
            if (entry.Length > Limits.MaxHparamsBytes)
                throw new InvalidDataException(Invariant($"{HparamsEntry} is {entry.Length} bytes; ") +
                    Invariant($"the limit is {Limits.MaxHparamsBytes} (limit {nameof(Limits.MaxHparamsBytes)})."));
            using var content = entry.Open();
            return Parse(ReadBounded(content, Limits.MaxHparamsBytes));
        }
    }

    /// <summary>Parses and checks hparams.json text (UTF-8).</summary>
    /// <exception cref="InvalidDataException">Malformed or out of bounds.</exception>
    public static CheckpointHeader Parse(ReadOnlySpan<byte> json)
    {
        if (json.Length > Limits.MaxHparamsBytes)
            throw new InvalidDataException(Invariant($"{HparamsEntry} is {json.Length} bytes; the limit is {Limits.MaxHparamsBytes}."));
        CheckpointHeader? header;
        try
        {
            header = JsonSerializer.Deserialize<CheckpointHeader>(json, Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{HparamsEntry} is not valid: {e.Message}", e);
        }
        (header ?? throw new InvalidDataException($"{HparamsEntry} is empty.")).Validate();
        return header;
    }

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, Json);

    /// <summary>Checks every field against the platform's limits.</summary>
    /// <exception cref="InvalidDataException">The field and the limit it breaks.</exception>
    public void Validate()
    {
        if (FormatVersion != CurrentFormatVersion)
            throw new InvalidDataException(Invariant(
                $"Checkpoint format {FormatVersion} is not supported by this version (it reads format {CurrentFormatVersion})."));
        if (string.IsNullOrWhiteSpace(Arch) || Arch.Length > ResourceName.MaxModelNameLength)
            throw new InvalidDataException(
                $"{HparamsEntry} lacks the architecture (arch) or it is longer than {ResourceName.MaxModelNameLength} characters.");
        if (Classes is null || Classes.Length == 0)
            throw new InvalidDataException($"{HparamsEntry} lacks the class list (classes).");
        if (Classes.Length > Limits.MaxClasses)
            throw new InvalidDataException(Invariant(
                $"{HparamsEntry} lists {Classes.Length} classes; the limit is {Limits.MaxClasses} (limit {nameof(Limits.MaxClasses)})."));
        for (var i = 0; i < Classes.Length; i++)
        {
            var label = Classes[i];
            if (string.IsNullOrWhiteSpace(label) || label.Length > Limits.MaxClassNameLength || label.Any(char.IsControl))
                throw new InvalidDataException(Invariant(
                    $"{HparamsEntry}: class {i} is empty, longer than {Limits.MaxClassNameLength} characters or has control characters."));
        }
        if (Resize is < Limits.MinResize or > Limits.MaxResize)
            throw new InvalidDataException(Invariant($"{HparamsEntry}: resize {Resize} is out of range; ") +
                Invariant($"it must be {Limits.MinResize}-{Limits.MaxResize} pixels (limit {nameof(Limits.MaxResize)})."));
        if (ImgNorm is { } norm)
        {
            if (norm.Mean is null || norm.Std is null || norm.Mean.Length is not (1 or 3) || norm.Std.Length != norm.Mean.Length)
                throw new InvalidDataException($"{HparamsEntry}: img_norm needs 1 or 3 values each of mean and std.");
            if (norm.Mean.Any(m => !double.IsFinite(m)) || norm.Std.Any(s => !double.IsFinite(s) || s <= 0))
                throw new InvalidDataException($"{HparamsEntry}: img_norm values must be finite and every std positive.");
        }
        foreach (var (field, value) in new[] { ("model_id", ModelId), ("training_id", TrainingId),
            ("dataset_fingerprint", DatasetFingerprint), ("platform_version", PlatformVersion) })
        {
            if (value is { Length: > Limits.MaxTextLength })
                throw new InvalidDataException(Invariant(
                    $"{HparamsEntry}: {field} has {value.Length} characters; the limit is {Limits.MaxTextLength}."));
        }
        if (ClassThresholds is { } thresholds)
        {
            if (thresholds.Length != Classes.Length)
                throw new InvalidDataException(Invariant(
                    $"{HparamsEntry}: class_thresholds has {thresholds.Length} entries for {Classes.Length} classes."));
            if (thresholds.Any(t => t is { } value && !(value >= 0 && value <= 1)))
                throw new InvalidDataException($"{HparamsEntry}: every class threshold must be null or a score from 0 to 1.");
        }
        if (Extras is { Count: > Limits.MaxListItems })
            throw new InvalidDataException(Invariant(
                $"{HparamsEntry}: extras has {Extras.Count} entries; the limit is {Limits.MaxListItems}."));
    }

    private static byte[] ReadBounded(Stream content, int limit)
    {
        // The zip's declared length can lie; never read more than the limit whatever it says.
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = content.Read(chunk, 0, chunk.Length)) > 0)
        {
            if (buffer.Length + read > limit)
                throw new InvalidDataException(Invariant(
                    $"{HparamsEntry} is larger than {limit} bytes (limit {nameof(Limits.MaxHparamsBytes)})."));
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
