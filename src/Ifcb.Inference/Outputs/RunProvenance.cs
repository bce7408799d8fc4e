using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using Ifcb.Contracts;

namespace Ifcb.Inference.Outputs;

/// <summary>
/// Where a run's model came from: a registered version (name, version, the reference as given and the alias it was
/// resolved from) or a checkpoint file (its name), and in both cases the checkpoint's SHA-256.
/// </summary>
public sealed record ModelProvenance
{
    private ModelProvenance(string source, string checkpointSha256)
    {
        Source = source;
        CheckpointSha256 = checkpointSha256;
    }

    /// <summary><c>registry</c> or <c>file</c>.</summary>
    public string Source { get; }

    /// <summary>Lower-case hex SHA-256 of the checkpoint file's bytes (for a registered version: the registry's).</summary>
    public string CheckpointSha256 { get; }

    /// <summary>The registered model's name; null for a file.</summary>
    public string? ModelName { get; private init; }

    /// <summary>The registered version number; null for a file.</summary>
    public int? ModelVersion { get; private init; }

    /// <summary>The alias the version was resolved from (<c>production</c> in <c>plankton@production</c>); null otherwise.</summary>
    public string? ModelAlias { get; private init; }

    /// <summary>The reference as the user gave it (<c>plankton@production</c>, <c>plankton/7</c>); null for a file.</summary>
    public string? ModelReference { get; private init; }

    /// <summary>The checkpoint's file name (no folder: host paths stay private); null for a registered version.</summary>
    public string? CheckpointFile { get; private init; }

    /// <summary>A checkpoint file: hashes its bytes.</summary>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static ModelProvenance FromFile(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        using var file = File.OpenRead(path);
        return new ModelProvenance("file", Convert.ToHexStringLower(SHA256.HashData(file)))
        {
            CheckpointFile = Path.GetFileName(path),
        };
    }

    /// <summary>A registered version.</summary>
    /// <param name="version">The exact version run (NAME/N).</param>
    /// <param name="requested">The reference as given (NAME, NAME/N, NAME/latest or NAME@ALIAS).</param>
    /// <param name="checkpointSha256">The version's checkpoint SHA-256 as the registry reports it (verified on download);
    /// empty when unknown (then left out of the files).</param>
    public static ModelProvenance FromRegistry(ModelRef version, ModelRef requested, string checkpointSha256)
    {
        ArgumentNullException.ThrowIfNull(version);
        ArgumentNullException.ThrowIfNull(requested);
        ArgumentNullException.ThrowIfNull(checkpointSha256);
        if (version.Version is null)
            throw new ArgumentException($"'{version}' is not an exact version (NAME/N).", nameof(version));
        return new ModelProvenance("registry", checkpointSha256.ToLowerInvariant())
        {
            ModelName = version.Name,
            ModelVersion = version.Version,
            ModelAlias = requested.Alias,
            ModelReference = requested.ToString(),
        };
    }
}

/// <summary>
/// What every result file of a run says about how it was made: the run id, the platform version and the model's
/// <see cref="ModelProvenance"/> when the caller knows it. The same names are used in every format: <c>.h5</c>
/// attributes of <c>metadata</c>, top-level <c>.json</c> fields and <c>.csv</c> header comments (<c># name: value</c>):
/// <c>run_id</c>, <c>platform_version</c>, <c>model_source</c> (<c>registry</c> or <c>file</c>), <c>model_name</c>,
/// <c>model_version</c> (an integer in .h5 and .json), <c>model_alias</c>, <c>model_reference</c> (registered models),
/// <c>checkpoint_file</c> (files) and <c>checkpoint_sha256</c>. A field without a value is left out.
/// </summary>
public sealed record RunProvenance(string RunId, string PlatformVersion, ModelProvenance? Model)
{
    /// <summary>This build's version (the informational version of the RUN engine's assembly).</summary>
    public static string CurrentPlatformVersion { get; } =
        typeof(RunProvenance).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    /// <summary>The fields in their written order; values are strings or, for <c>model_version</c>, an int.</summary>
    public IReadOnlyList<KeyValuePair<string, object>> Fields()
    {
        var fields = new List<KeyValuePair<string, object>> { new("run_id", RunId), new("platform_version", PlatformVersion) };
        if (Model is { } model)
        {
            fields.Add(new("model_source", model.Source));
            Add(fields, "model_name", model.ModelName);
            if (model.ModelVersion is { } version)
                fields.Add(new("model_version", version));
            Add(fields, "model_alias", model.ModelAlias);
            Add(fields, "model_reference", model.ModelReference);
            Add(fields, "checkpoint_file", model.CheckpointFile);
            Add(fields, "checkpoint_sha256", model.CheckpointSha256);
        }
        return fields;
    }

    /// <summary>A field's value as text (CSV comments).</summary>
    public static string Text(object value) => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";

    private static void Add(List<KeyValuePair<string, object>> fields, string name, string? value)
    {
        if (!string.IsNullOrEmpty(value))
            fields.Add(new(name, value));
    }
}
