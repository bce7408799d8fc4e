using System.Diagnostics;

namespace Ifcb.Models.Tests;

public sealed class NativeAllocatorTests
{
    [Fact]
    public void Configure_applies_the_thresholds_in_process_on_glibc()
    {
        // The test host is not started with the variables, so the settings go in with mallopt (glibc on Linux).
        Assert.False(NativeAllocator.StartedWithEnvironment());
        Assert.Equal("in-process", NativeAllocator.Configure());
        Assert.Equal("in-process", NativeAllocator.Settings);
    }

    [Fact]
    public void The_environment_variables_make_glibc_keep_freed_memory_for_reuse()
    {
        // glibc ignores malformed or out-of-range tunables silently, so check the values take effect: a child process
        // started with them must keep a freed 200 MB block (faults only on first touch: ~51k pages) where the defaults
        // unmap it after each use (~5 × 51k).
        var kept = ChildMinorFaults(withVariables: true);
        var unmapped = ChildMinorFaults(withVariables: false);
        Assert.True(kept * 3 < unmapped, $"minor faults with the variables {kept}, without {unmapped}");
    }

    // /usr/bin/python3 allocates and frees 200 MB five times via ctypes malloc/memset and prints its minor fault count.
    private static long ChildMinorFaults(bool withVariables)
    {
        const string script = """
            import ctypes, resource
            libc = ctypes.CDLL("libc.so.6")
            libc.malloc.restype = ctypes.c_void_p
            for _ in range(5):
                p = libc.malloc(200 << 20)
                ctypes.memset(p, 1, 200 << 20)
                libc.free(ctypes.c_void_p(p))
            print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)
            """;
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        foreach (var name in NativeAllocator.EnvironmentVariables.Keys)
            start.Environment.Remove(name);
        if (withVariables)
            foreach (var (name, value) in NativeAllocator.EnvironmentVariables)
                start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, process.StandardError.ReadToEnd());
        return long.Parse(output.Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
