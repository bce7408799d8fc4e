namespace Ifcb.Testing;

/// <summary>Locates the repository from wherever a test or benchmark binary runs (bin/Debug/..., a copy on another machine).</summary>
public static class RepoPaths
{
    private static readonly Lazy<string> RootPath = new(FindRoot);

    /// <summary>
    /// The folder holding Ifcb.sln or testdata/, found by walking up from the binary's folder; the environment variable
    /// IFCB_REPO_ROOT overrides it for binaries run from outside the repository.
    /// </summary>
    public static string Root => RootPath.Value;

    private static string FindRoot()
    {
        if (Environment.GetEnvironmentVariable("IFCB_REPO_ROOT") is { Length: > 0 } overridden)
        {
            return Path.GetFullPath(overridden);
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Ifcb.sln"))
                || File.Exists(Path.Combine(dir.FullName, "Ifcb.slnx"))
                || Directory.Exists(Path.Combine(dir.FullName, "testdata")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException(
            $"Could not find the repository root (a folder with Ifcb.sln or testdata/) above {AppContext.BaseDirectory}.");
    }
}
