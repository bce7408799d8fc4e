using System.Globalization;
using Ifcb.Platform;

namespace Ifcb.Data.Datasets;

/// <summary>
/// Bounds on one client upload (a dataset or a bin set): bytes per file, number of files, bytes in all. The setting
/// names are the configuration keys that hold each bound, so an error message tells the operator what to raise.
/// </summary>
public sealed record UploadLimits(long MaxFileBytes, int MaxFiles, long MaxTotalBytes)
{
    public string MaxFileBytesSetting { get; init; } = nameof(MaxFileBytes);
    public string MaxFilesSetting { get; init; } = nameof(MaxFiles);
    public string MaxTotalBytesSetting { get; init; } = nameof(MaxTotalBytes);
}

/// <summary>
/// Counts an upload as it streams in (files arrive as runs of chunks, one file after another) and refuses it the
/// moment it breaks a bound or sends a file twice, before those bytes are stored. Not thread-safe: one per upload.
/// </summary>
/// <param name="what">How messages name the upload, e.g. "dataset upload".</param>
/// <param name="duplicateHint">Appended to the message for a file sent twice.</param>
public sealed class UploadBudget(UploadLimits limits, string what, string duplicateHint = "")
{
    private readonly HashSet<string> _seen = new(StringComparer.Ordinal);
    private string? _current;
    private long _currentBytes;

    public int Files => _seen.Count;
    public long TotalBytes { get; private set; }

    /// <summary>Counts one chunk of file <paramref name="key"/>; true when it starts that file.</summary>
    /// <exception cref="IfcbException">
    /// InvalidArgument: the file was already sent, or a bound is exceeded (the message names it and its setting).
    /// </exception>
    public bool Add(string key, long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        var starts = key != _current;
        if (starts)
        {
            if (!_seen.Add(key))
                throw IfcbException.InvalidArgument(
                    $"{key} appears twice in this {what}; send every file once, its chunks one after another{duplicateHint}.");
            if (_seen.Count > limits.MaxFiles)
                throw IfcbException.InvalidArgument(
                    Invariant($"This {what} has more than {limits.MaxFiles} files (limit {limits.MaxFilesSetting}); ") +
                    "split it, or ask the operator to raise the limit.");
            _current = key;
            _currentBytes = 0;
        }
        _currentBytes += bytes;
        TotalBytes += bytes;
        if (_currentBytes > limits.MaxFileBytes)
            throw IfcbException.InvalidArgument(
                Invariant($"{key} is larger than the {Size(limits.MaxFileBytes)} per-file limit of this {what} ") +
                Invariant($"(limit {limits.MaxFileBytesSetting}); leave it out or shrink it."));
        if (TotalBytes > limits.MaxTotalBytes)
            throw IfcbException.InvalidArgument(
                Invariant($"This {what} exceeds its {Size(limits.MaxTotalBytes)} limit (limit {limits.MaxTotalBytesSetting}); ") +
                "split it, or ask the operator to raise the limit.");
        return starts;
    }

    /// <summary>The current file is complete: a later chunk with its key is a second copy, not a continuation.</summary>
    public void EndFile() => _current = null;

    private static string Size(long bytes) =>
        bytes >= 1 << 20 ? Invariant($"{bytes / (1024.0 * 1024):0.#} MiB") : Invariant($"{bytes} bytes");

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
