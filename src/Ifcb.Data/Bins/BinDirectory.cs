namespace Ifcb.Data.Bins;

/// <summary>A complete bin found on disk: its id, the path without extension, and its folder relative to the scan root.</summary>
public sealed record BinLocation(BinId Id, string BasePath, string RelativeDirectory)
{
    public RawBin Open() => RawBin.Open(BasePath);
}

/// <summary>A file or bin the walker did not take, and why.</summary>
public sealed record SkippedBinFile(string Path, string Reason);

public sealed record BinScan(IReadOnlyList<BinLocation> Bins, IReadOnlyList<SkippedBinFile> Skipped);

/// <summary>
/// Finds bins below a folder, at any depth and under any folder names. pyifcb's <c>DataDirectory</c> only descends into
/// whitelisted folders (<c>data</c>, or names contained in the bin id) and silently ignores the rest; we take every
/// folder and instead report each <c>.adc</c>/<c>.roi</c>/<c>.hdr</c> file we could not use and why.
/// </summary>
public static class BinDirectory
{
    private static readonly string[] BinExtensions = [".adc", ".roi", ".hdr"];

    /// <summary>Scans <paramref name="root"/> recursively. Bins are returned in ordinal order of their relative path.</summary>
    /// <exception cref="DirectoryNotFoundException"><paramref name="root"/> does not exist.</exception>
    public static BinScan Scan(string root)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        var fullRoot = Path.GetFullPath(root);
        if (!Directory.Exists(fullRoot))
            throw new DirectoryNotFoundException($"Bin folder {fullRoot} does not exist.");
        var bins = new List<BinLocation>();
        var skipped = new List<SkippedBinFile>();
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 };
        var groups = Directory.EnumerateFiles(fullRoot, "*", options)
            .Where(f => BinExtensions.Contains(Path.GetExtension(f), StringComparer.Ordinal))
            .GroupBy(f => f[..^Path.GetExtension(f).Length], StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal);
        foreach (var group in groups)
        {
            var stem = group.Key;
            var lid = Path.GetFileName(stem);
            if (!BinId.TryParse(lid, out var id))
            {
                skipped.AddRange(group.Order(StringComparer.Ordinal).Select(f =>
                    new SkippedBinFile(f, $"\"{lid}\" is not an IFCB bin id (DYYYYMMDDTHHMMSS_IFCBnnn or IFCBn_YYYY_DDD_HHMMSS).")));
                continue;
            }
            var problems = new List<string>();
            foreach (var ext in new[] { ".adc", ".roi" })
            {
                var file = new FileInfo(stem + ext);
                if (!file.Exists)
                    problems.Add($"missing {ext}");
                else if (file.Length == 0)
                    problems.Add($"{ext} is empty (0 bytes)");
            }
            if (problems.Count > 0)
            {
                skipped.Add(new SkippedBinFile(stem, $"bin {lid}: {string.Join("; ", problems)}."));
                continue;
            }
            var relative = Path.GetRelativePath(fullRoot, Path.GetDirectoryName(stem)!);
            bins.Add(new BinLocation(id!, stem, relative == "." ? "" : relative.Replace('\\', '/')));
        }
        return new BinScan(bins, skipped);
    }
}
