using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;
using Ifcb.Contracts;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine;

/// <summary>
/// Every input check in one place, so the rules (which double as blob-path safety) cannot drift between operations.
/// Each method throws <see cref="IfcbException"/> of kind InvalidArgument with a message that says what to fix.
/// </summary>
public static partial class RegistryValidation
{
    public const int MaxNameLength = ResourceName.MaxModelNameLength;
    public const int MaxTagKeyLength = 250;
    public const int MaxTagValueLength = 5000;
    public const int MaxDescriptionLength = 5000;
    public const int MaxActorLength = 256;
    public const int MaxIdempotencyKeyLength = 1024;
    public const int MaxPageSize = 1000;

    /// <summary>Version numbers are zero-padded to seven digits in blob names, so listing order is numeric order.</summary>
    public const int MaxVersionNumber = 9_999_999;

    [GeneratedRegex("^v[0-9]+$")]
    private static partial Regex VersionLikeAlias();

    [GeneratedRegex("^[A-Za-z0-9_.\\-/: ]+$")]
    private static partial Regex KeyPattern();

    [GeneratedRegex("^[0-9a-fA-F]{64}$")]
    private static partial Regex Sha256Pattern();

    /// <summary>
    /// Model names become blob path segments: the platform's registry-name rule, [A-Za-z0-9][A-Za-z0-9._-]{0,127}, no "..".
    /// </summary>
    public static void ModelName(string? name) => RegistryName(name, "model name");

    /// <summary>API key names become blob names (<c>keys/{name}.json</c>) and key text: the model-name rule.</summary>
    public static void KeyName(string? name) => RegistryName(name, "key name");

    /// <summary>A reference's model name and alias follow the registry's naming rules (its grammar is <see cref="ModelRef"/>'s).</summary>
    public static void Reference(ModelRef? reference)
    {
        if (reference is null)
            Fail("A model reference is required: NAME, NAME/VERSION, NAME/latest or NAME@ALIAS.");

        ModelName(reference!.Name);
        if (reference.Alias is { } alias)
            Alias(alias);
    }

    /// <summary>Aliases follow model-name rules; "latest" and "v&lt;digits&gt;" are reserved because references use them.</summary>
    public static void Alias(string? alias)
    {
        RegistryName(alias, "alias");
        if (alias == "latest" || VersionLikeAlias().IsMatch(alias!))
            Fail($"Alias '{alias}' is reserved (\"latest\" and \"v<number>\" mean versions); choose another, e.g. 'production'.");
    }

    public static void TagKey(string? key) => Key(key, "Tag key");

    public static void MetricName(string? name) => Key(name, "Metric name");

    public static void TagValue(string key, string? value)
    {
        if (value is null)
            Fail($"Tag '{key}' needs a value (use an empty string for none).");

        if (value!.Length > MaxTagValueLength)
            Fail($"Tag '{key}' value is {value.Length} characters; the limit is {MaxTagValueLength}.");

        if (value.Any(c => char.IsControl(c) && c is not ('\t' or '\n' or '\r')))
            Fail($"Tag '{key}' value contains control characters; only tab and newlines are allowed.");
    }

    public static void Tags(IReadOnlyDictionary<string, string> tags)
    {
        ArgumentNullException.ThrowIfNull(tags);
        Limits.Check(tags.Count, 0, Limits.MaxListItems, "tags", nameof(Limits.MaxListItems));
        foreach (var (key, value) in tags)
        {
            TagKey(key);
            TagValue(key, value);
        }
    }

    public static void Description(string? description)
    {
        if (description is null)
            Fail("Description must not be null; use an empty string for none.");

        if (description!.Length > MaxDescriptionLength)
            Fail($"Description is {description.Length} characters; the limit is {MaxDescriptionLength}.");
    }

    /// <summary>The actor is recorded in the audit log; it must be present and printable.</summary>
    public static void Actor(string? actor) => PrintableText(actor, "Actor", MaxActorLength);

    /// <summary>The preamble of every change to a model: its name, then the actor the audit log records.</summary>
    internal static void ModelChange(string? modelName, string? actor)
    {
        ModelName(modelName);
        Actor(actor);
    }

    public static void VersionNumber(int version)
    {
        if (version is < 1 or > MaxVersionNumber)
            Fail($"Version number {version} is out of range; versions are numbered from 1 to {MaxVersionNumber}.");
    }

    public static void PageSize(int pageSize)
    {
        if (pageSize is < 1 or > MaxPageSize)
            Fail($"Page size {pageSize} is out of range; ask for 1 to {MaxPageSize} items.");
    }

    /// <summary>Returns the sha256 in lower case, the form stored and compared.</summary>
    public static string Sha256(string? sha256)
    {
        if (sha256 is null || !Sha256Pattern().IsMatch(sha256))
            Fail($"Sha256 '{sha256}' must be 64 hexadecimal characters (the hex digest of the checkpoint file).");

        return sha256!.ToLowerInvariant();
    }

    /// <summary>Checks a registration request; the size limit is checked here, before anything is stored.</summary>
    public static void NewVersion(NewModelVersion request, long maxCheckpointBytes)
    {
        ArgumentNullException.ThrowIfNull(request);
        PrintableText(request.Arch, "Arch", MaxNameLength);
        Sha256(request.Sha256);
        if (request.SizeBytes <= 0)
            Fail($"Checkpoint size {request.SizeBytes} must be positive (the byte length of the checkpoint file).");

        if (request.SizeBytes > maxCheckpointBytes)
        {
            throw new IfcbException(ErrorKind.ResourceExhausted,
                $"Checkpoint is {request.SizeBytes} bytes; this registry accepts at most {maxCheckpointBytes} bytes.");
        }

        if (request.Classes.IsDefault)
            Fail("Classes must be a list (empty when not declared).");

        // The platform's bounds, the same the checkpoint reader applies to hparams.json: what is registered can be loaded.
        Limits.Check(request.Classes.Length, 0, Limits.MaxClasses, "classes", nameof(Limits.MaxClasses));
        foreach (var className in request.Classes)
            PrintableText(className, "Class name", Limits.MaxClassNameLength);

        Limits.Check(request.Metrics.Count, 0, Limits.MaxListItems, "metrics", nameof(Limits.MaxListItems));
        foreach (var (metric, value) in request.Metrics)
        {
            MetricName(metric);
            if (!double.IsFinite(value))
                Fail($"Metric '{metric}' is {value}; metrics must be finite numbers.");
        }

        Tags(request.Tags);
        Description(request.Description);
        OptionalText(request.Source.TrainingJobId, "Training job id", MaxTagValueLength);
        OptionalText(request.Source.Commit, "Commit", MaxTagValueLength);
        OptionalText(request.Source.PipelineUrl, "Pipeline url", MaxTagValueLength);
        OptionalText(request.DatasetFingerprint, "Dataset fingerprint", MaxTagValueLength);
        OptionalText(request.IdempotencyKey, "Idempotency key", MaxIdempotencyKeyLength);
        if (request.Resize is { } resize)
        {
            Limits.Check(resize, Limits.MinResize, Limits.MaxResize, "resize (the model's square input side in pixels)",
                nameof(Limits.MaxResize));
        }
    }

    /// <summary>An update must change something, and what it sets follows the registration rules for those fields.</summary>
    public static void Update(VersionUpdate update)
    {
        ArgumentNullException.ThrowIfNull(update);
        if (update.RemoveMetrics.IsDefault)
            Fail("Metrics to remove must be a list (empty for none).");

        if (update.Description is null && update.SetMetrics.Count == 0 && update.RemoveMetrics.IsEmpty && update.SourceCommit is null
            && update.SourcePipelineUrl is null)
        {
            Fail("The update changes nothing; give a description, metrics to set or remove, a source commit or a pipeline URL.");
        }

        if (update.Description is not null)
            Description(update.Description);

        Limits.Check(update.SetMetrics.Count, 0, Limits.MaxListItems, "metrics", nameof(Limits.MaxListItems));
        Limits.Check(update.RemoveMetrics.Length, 0, Limits.MaxListItems, "metrics to remove", nameof(Limits.MaxListItems));
        foreach (var (metric, value) in update.SetMetrics)
        {
            MetricName(metric);
            if (!double.IsFinite(value))
                Fail($"Metric '{metric}' is {value}; metrics must be finite numbers.");
        }

        foreach (var metric in update.RemoveMetrics)
        {
            MetricName(metric);
            if (update.SetMetrics.ContainsKey(metric))
                Fail($"Metric '{metric}' is both set and removed; do one or the other.");
        }

        OptionalText(update.SourceCommit, "Commit", MaxTagValueLength);
        OptionalText(update.SourcePipelineUrl, "Pipeline url", MaxTagValueLength);
    }

    public static void Filter(VersionFilter filter)
    {
        ArgumentNullException.ThrowIfNull(filter);
        if (filter.ModelName is not null)
            ModelName(filter.ModelName);

        Tags(filter.Tags);
        if (filter.Metrics.IsDefault)
            Fail("Metric conditions must be a list (empty for none).");

        Limits.Check(filter.Metrics.Length, 0, Limits.MaxListItems, "metric conditions", nameof(Limits.MaxListItems));
        foreach (var threshold in filter.Metrics)
        {
            MetricName(threshold.Metric);
            if (!double.IsFinite(threshold.Value))
                Fail($"Metric condition on '{threshold.Metric}' needs a finite number.");
        }
    }

    /// <summary>
    /// The platform's one rule for registry names (<see cref="ResourceName.ValidateModelName"/>), reported as this
    /// engine's typed error so callers see InvalidArgument with the rule's own message.
    /// </summary>
    private static void RegistryName(string? name, string what)
    {
        try
        {
            ResourceName.ValidateModelName(name, what);
        }
        catch (ArgumentException e)
        {
            // ArgumentException appends " (Parameter 'name')", which means nothing to a client.
            var suffix = $" (Parameter '{e.ParamName}')";
            var message = e.ParamName is not null && e.Message.EndsWith(suffix, StringComparison.Ordinal)
                ? e.Message[..^suffix.Length]
                : e.Message;
            throw IfcbException.InvalidArgument(message);
        }
    }

    private static void Key(string? key, string what)
    {
        if (string.IsNullOrEmpty(key))
            Fail($"{what} is empty.");

        if (key!.Length > MaxTagKeyLength)
            Fail($"{what} is {key.Length} characters; the limit is {MaxTagKeyLength}.");

        if (!KeyPattern().IsMatch(key))
            Fail($"{what} '{key}' may contain only letters, digits, '_', '.', '-', '/', ':' and spaces.");
    }

    private static void PrintableText(string? text, string what, int maxLength)
    {
        if (string.IsNullOrWhiteSpace(text))
            Fail($"{what} is empty.");

        OptionalText(text, what, maxLength);
    }

    private static void OptionalText(string? text, string what, int maxLength)
    {
        if (text is null)
            return;

        if (text.Length > maxLength)
            Fail($"{what} is {text.Length} characters; the limit is {maxLength}.");

        if (text.Any(char.IsControl))
            Fail($"{what} contains control characters.");
    }

    [DoesNotReturn]
    private static void Fail(string message) => throw IfcbException.InvalidArgument(message);
}
