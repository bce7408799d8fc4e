using System.Diagnostics;

namespace Ifcb.Data.Tests;

/// <summary>Finds the repository's testdata/ by walking up from the test binaries.</summary>
internal static class TestData
{
    public static string Root { get; } = Find();

    public static string TrainingSample => Path.Combine(Root, "training-sample");
    public static string Bins => Path.Combine(Root, "bins");
    public static string WhiteBin => Path.Combine(Bins, "white", "D2013", "D201305", "D20130526", "D20130526T095207_IFCB013");
    public static string V1Bin => Path.Combine(Bins, "data", "2012", "IFCB5_2012_028", "IFCB5_2012_028_081515");

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "testdata");
            if (Directory.Exists(Path.Combine(candidate, "training-sample")))
                return candidate;
        }
        throw new DirectoryNotFoundException($"No testdata/ folder above {AppContext.BaseDirectory}.");
    }

    public static string TempDirectory()
    {
        var path = Path.Combine(Path.GetTempPath(), "ifcb-data-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>Runs /usr/bin/python3 with a script and returns stdout; fails the test with stderr if it fails.</summary>
    public static string RunPython(string script, params string[] args)
    {
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        foreach (var a in args)
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"python failed ({process.ExitCode}): {stderr}");
        return stdout.Result;
    }
}
