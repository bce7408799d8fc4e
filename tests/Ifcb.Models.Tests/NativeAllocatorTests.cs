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
        // glibc ignores malformed or out-of-range tunables silently, so check the values take effect. Read off glibc's
        // own bookkeeping (mallinfo2), not timings or page faults, which depend on the machine (transparent huge pages):
        // with the variables a 200 MB block comes from the heap, not from its own mmap, and stays in the heap after
        // free; with glibc's defaults it is mapped for itself and unmapped on free.
        var kept = ChildAllocation(withVariables: true);
        Assert.True(kept.MappedForItself < Block, $"with the variables the block was mmapped: {kept}");
        Assert.True(kept.HeapAfterFree >= Block, $"with the variables the heap gave the block back: {kept}");

        var unmapped = ChildAllocation(withVariables: false);
        Assert.True(unmapped.MappedForItself >= Block, $"with glibc's defaults the block was not mmapped: {unmapped}");
        Assert.True(unmapped.HeapAfterFree < Block, $"with glibc's defaults the heap kept the block: {unmapped}");
    }

    private const long Block = 200L << 20;

    private sealed record Allocation(long MappedForItself, long HeapAfterFree);

    // /usr/bin/python3 mallocs 200 MB via ctypes, frees it and prints mallinfo2's mmapped-bytes growth while it was held
    // and the heap (arena) size after free.
    private static Allocation ChildAllocation(bool withVariables)
    {
        const string script = """
            import ctypes
            class Info(ctypes.Structure):
                _fields_ = [(n, ctypes.c_size_t) for n in
                            ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
            libc = ctypes.CDLL("libc.so.6")
            libc.malloc.restype = ctypes.c_void_p
            libc.mallinfo2.restype = Info
            before = libc.mallinfo2().hblkhd
            p = libc.malloc(200 << 20)
            ctypes.memset(p, 1, 200 << 20)
            held = libc.mallinfo2().hblkhd
            libc.free(ctypes.c_void_p(p))
            print(held - before, libc.mallinfo2().arena)
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
        var numbers = output.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(n => long.Parse(n, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        return new Allocation(numbers[0], numbers[1]);
    }
}
