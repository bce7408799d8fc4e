using Ifcb.Data.Bins;

namespace Ifcb.Inference;

/// <summary>A bin to classify: its id, path without extension, and folder relative to SRC (<c>{INPUT_SUBDIRS}</c>).</summary>
internal sealed record BinInput(BinId Id, string BasePath, string RelativeDirectory)
{
    /// <summary>neuston's pid with namespace: what <c>--filter</c> matches against.</summary>
    public string FilterId => RelativeDirectory.Length == 0 ? Id.Lid : RelativeDirectory + "/" + Id.Lid;
}

/// <summary>An image to classify: its full path and its path relative to SRC ('/' separated).</summary>
internal sealed record ImageInput(string FullPath, string RelativePath)
{
    public string RelativeDirectory =>
        RelativePath.Contains('/', StringComparison.Ordinal) ? RelativePath[..RelativePath.LastIndexOf('/')] : "";
}

internal sealed record ResolvedInputs<T>(
    IReadOnlyList<T> Items, IReadOnlyList<SkippedBinFile> NotInputs, IReadOnlyList<RunItemFailure> Failures);

/// <summary>Turns SRC (a folder, a <c>.txt</c> list or one path) into the bins or images of a run.</summary>
internal static class RunInputs
{
    /// <summary>Extensions SkiaSharp decodes (matched case-insensitively, unlike neuston's case-sensitive filter).</summary>
    private static readonly string[] ImageExtensions = [".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif"];

    private static readonly string[] BinExtensions = [".adc", ".roi", ".hdr"];

    public static ResolvedInputs<BinInput> ResolveBins(string source)
    {
        if (Directory.Exists(source))
        {
            var scan = BinDirectory.Scan(source);
            var bins = scan.Bins.Select(b => new BinInput(b.Id, b.BasePath, b.RelativeDirectory)).ToList();
            // A named bin whose files are missing or empty is a failed bin; anything else the walker left is not a bin.
            var failures = new List<RunItemFailure>();
            var notBins = new List<SkippedBinFile>();
            foreach (var skipped in scan.Skipped)
            {
                if (BinId.TryParse(Path.GetFileName(skipped.Path), out var id))
                    failures.Add(new RunItemFailure(id!.Lid, skipped.Path, skipped.Reason));
                else
                    notBins.Add(skipped);
            }
            return new ResolvedInputs<BinInput>(bins, notBins, failures);
        }
        if (IsListFile(source))
        {
            var listed = new List<(string Stem, string Lid)>();
            var failures = new List<RunItemFailure>();
            foreach (var path in ReadList(source))
            {
                var stem = StripBinExtension(path);
                var lid = Path.GetFileName(stem);
                if (BinId.TryParse(lid, out _))
                    listed.Add((stem, lid));
                else
                    failures.Add(new RunItemFailure(lid, path,
                        $"\"{lid}\" (listed in {source}) is not an IFCB bin id (DYYYYMMDDTHHMMSS_IFCBnnn or IFCBn_YYYY_DDD_HHMMSS)."));
            }
            var common = CommonDirectory(listed.Select(b => Path.GetDirectoryName(b.Stem)!));
            var bins = listed
                .Select(b => new BinInput(BinId.Parse(b.Lid), b.Stem, Relative(common, Path.GetDirectoryName(b.Stem)!)))
                .ToList();
            return new ResolvedInputs<BinInput>(bins, [], failures);
        }
        var single = StripBinExtension(Path.GetFullPath(source));
        var singleLid = Path.GetFileName(single);
        if (!BinId.TryParse(singleLid, out var singleId))
        {
            if (!File.Exists(source))
                throw new FileNotFoundException(
                    $"SRC {source} is neither a folder, a .txt list of bins, nor a bin path (dir/DYYYYMMDDTHHMMSS_IFCBnnn).", source);
            throw new ArgumentException(
                $"SRC {source} is not a bin: \"{singleLid}\" is not an IFCB bin id. For images use --type img.", nameof(source));
        }
        return new ResolvedInputs<BinInput>([new BinInput(singleId!, single, "")], [], []);
    }

    public static ResolvedInputs<ImageInput> ResolveImages(string source)
    {
        if (Directory.Exists(source))
        {
            var root = Path.GetFullPath(source);
            var images = new List<ImageInput>();
            var notImages = new List<SkippedBinFile>();
            var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 };
            foreach (var file in Directory.EnumerateFiles(root, "*", options).Order(StringComparer.Ordinal))
            {
                if (IsImage(file))
                    images.Add(new ImageInput(file, Relative(root, file)));
                else
                    notImages.Add(new SkippedBinFile(file,
                        $"not an image this platform decodes (extensions: {string.Join(", ", ImageExtensions)}); " +
                        "convert TIFF/PPM/PGM to PNG."));
            }
            images.Sort((a, b) => string.CompareOrdinal(a.RelativePath, b.RelativePath));
            return new ResolvedInputs<ImageInput>(images, notImages, []);
        }
        if (IsListFile(source))
        {
            var paths = ReadList(source).ToList();
            var common = CommonDirectory(paths.Select(p => Path.GetDirectoryName(p)!));
            return new ResolvedInputs<ImageInput>([.. paths.Select(p => new ImageInput(p, Relative(common, p)))], [], []);
        }
        if (!File.Exists(source))
            throw new FileNotFoundException($"SRC {source} is neither a folder, a .txt list of images, nor an image file.", source);
        var full = Path.GetFullPath(source);
        return new ResolvedInputs<ImageInput>([new ImageInput(full, Path.GetFileName(full))], [], []);
    }

    private static bool IsImage(string path) => ImageExtensions.Contains(Path.GetExtension(path), StringComparer.OrdinalIgnoreCase);

    private static bool IsListFile(string source) =>
        File.Exists(source) && Path.GetExtension(source).Equals(".txt", StringComparison.OrdinalIgnoreCase);

    /// <summary>Non-blank lines not starting with '#', as full paths (relative lines are relative to the list's folder).</summary>
    private static IEnumerable<string> ReadList(string listFile)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(listFile))!;
        return File.ReadAllLines(listFile)
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => Path.GetFullPath(l, folder));
    }

    private static string StripBinExtension(string path)
    {
        var extension = Path.GetExtension(path);
        return BinExtensions.Contains(extension, StringComparer.Ordinal) ? path[..^extension.Length] : path;
    }

    private static string Relative(string root, string path)
    {
        var relative = Path.GetRelativePath(root, path).Replace('\\', '/');
        return relative == "." ? "" : relative;
    }

    /// <summary>The deepest folder containing all of <paramref name="folders"/> (Python's os.path.commonpath).</summary>
    private static string CommonDirectory(IEnumerable<string> folders)
    {
        string[]? common = null;
        foreach (var folder in folders)
        {
            var parts = Path.GetFullPath(folder).Split(Path.DirectorySeparatorChar);
            if (common is null)
            {
                common = parts;
                continue;
            }
            var length = 0;
            while (length < common.Length && length < parts.Length && common[length] == parts[length])
                length++;
            common = common[..length];
        }
        if (common is null || common.Length == 0)
            return Path.GetPathRoot(Environment.CurrentDirectory) ?? "/";
        var joined = string.Join(Path.DirectorySeparatorChar, common);
        return joined.Length == 0 ? Path.DirectorySeparatorChar.ToString() : joined;
    }
}
