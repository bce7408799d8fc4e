using System.Runtime.InteropServices;

namespace Ifcb.Models;

/// <summary>
/// glibc malloc settings for processes that train or run models with libtorch on the CPU.
/// <para>
/// By default glibc serves every block of 32 MB or more with a fresh <c>mmap</c> and unmaps it on free, and trims freed
/// memory at the top of the heap back to the kernel. A training step allocates and frees hundreds of such activation and
/// gradient tensors, so every step faults all their pages in again — on the 2-core machines this project is built on that
/// made page faults, not arithmetic, the larger part of a step: resnet18 (batch 16 @224) took 1.0–1.8 s per step with
/// the defaults and 0.72 s with these settings, densenet121 4.2 s and 1.9 s, and a whole training epoch through the
/// engine ran 2× faster (bench/Ifcb.Models.Bench, bench/Ifcb.Training.Bench). The price: the process keeps its peak
/// heap after a step instead of returning it, which a training worker needs again for the next step anyway.
/// </para>
/// </summary>
public static class NativeAllocator
{
    private const int MTrimThreshold = -1;
    private const int MTopPad = -2;
    private const int MMmapThreshold = -3;

    /// <summary>Blocks at least this large are still mapped and unmapped one by one (1 GiB).</summary>
    public const int MmapThresholdBytes = MallocTuning.MmapThresholdBytes;

    /// <summary>The heap grows in steps of at least this much (64 MiB).</summary>
    public const int TopPadBytes = MallocTuning.TopPadBytes;

    /// <summary>
    /// The settings as environment variables, for a process started by someone else (the AppHost sets them on the
    /// Training service). Only there can <c>MALLOC_ARENA_MAX=1</c> take effect: threads other than the main one
    /// otherwise allocate from per-thread arenas, whose heaps are limited to 64 MB, so larger tensors made on a worker
    /// thread are mapped and unmapped one by one whatever the thresholds say.
    /// </summary>
    public static IReadOnlyDictionary<string, string> EnvironmentVariables => MallocTuning.EnvironmentVariables;

    /// <summary>What <see cref="Configure"/> found or did: <c>environment</c>, <c>in-process</c> or <c>glibc-defaults</c>.</summary>
    public static string Settings { get; private set; } = "glibc-defaults";

    /// <summary>
    /// Call first thing in a host's <c>Main</c>. When the process was started with <see cref="EnvironmentVariables"/>
    /// there is nothing left to do; otherwise the thresholds are applied to the running process with <c>mallopt</c>
    /// (the arena limit cannot be changed once threads exist; a resnet18 epoch was 1.8× faster than with the defaults
    /// this way, 2.0× with the environment). Changes nothing where the C library is not glibc. Returns
    /// <see cref="Settings"/>.
    /// </summary>
    public static string Configure()
    {
        if (StartedWithEnvironment())
            Settings = "environment";
        else if (ApplyWithMallopt())
            Settings = "in-process";
        return Settings;
    }

    /// <summary>
    /// For a command-line host: replaces this process with itself started with <see cref="EnvironmentVariables"/>
    /// (<c>execve</c> of <c>/proc/self/exe</c> with the same arguments, so the same PID, terminal and exit code), which
    /// is the only way the arena limit can apply: a resnet18 epoch through the engine took 41 s that way, 53 s with
    /// <see cref="Configure"/> alone and 74 s with glibc's defaults (bench/Ifcb.Training.Bench). Returns — after
    /// <see cref="Configure"/> — only where no restart is needed or possible: already started with the variables, not
    /// Linux, <c>IFCB_MALLOC_RESTART=0</c>, or <c>execve</c> failed.
    /// </summary>
    public static string ConfigureOrRestart()
    {
        if (StartedWithEnvironment() || !OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("IFCB_MALLOC_RESTART") == "0")
            return Configure();
        try
        {
            var argv = File.ReadAllText("/proc/self/cmdline").TrimEnd('\0').Split('\0');
            var environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
                .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "", StringComparer.Ordinal);
            foreach (var (name, value) in EnvironmentVariables)
                environment[name] = value;
            string?[] argvWithNull = [.. argv, null];
            string?[] envpWithNull = [.. environment.Select(e => $"{e.Key}={e.Value}"), null];
            Glibc.execve("/proc/self/exe", argvWithNull, envpWithNull); // returns only on failure
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or EntryPointNotFoundException or DllNotFoundException)
        {
        }
        return Configure();
    }

    private static bool ApplyWithMallopt()
    {
        if (!OperatingSystem.IsLinux())
            return false;
        try
        {
            return Glibc.mallopt(MMmapThreshold, MmapThresholdBytes) == 1
                & Glibc.mallopt(MTrimThreshold, int.MaxValue) == 1
                & Glibc.mallopt(MTopPad, TopPadBytes) == 1;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return false; // musl and other C libraries have no mallopt
        }
    }

    /// <summary>Whether this process was started with <see cref="EnvironmentVariables"/> (all of them).</summary>
    public static bool StartedWithEnvironment() =>
        EnvironmentVariables.All(pair => Environment.GetEnvironmentVariable(pair.Key) == pair.Value);

    private static class Glibc
    {
        [DllImport("libc", EntryPoint = "mallopt")]
        public static extern int mallopt(int param, int value);

        [DllImport("libc", EntryPoint = "execve", SetLastError = true)]
        public static extern int execve(string path, string?[] argv, string?[] envp);
    }
}
