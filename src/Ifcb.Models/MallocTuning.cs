using System.Collections.ObjectModel;
using System.Globalization;

namespace Ifcb.Models;

/// <summary>
/// The values behind <c>NativeAllocator</c>, with no dependencies: Ifcb.AppHost compiles this file too (linked
/// in its project file) to start the Training service with them, without referencing this TorchSharp library.
/// </summary>
internal static class MallocTuning
{
    /// <summary>Blocks at least this large are still mapped and unmapped one by one (1 GiB).</summary>
    public const int MmapThresholdBytes = 1 << 30;

    /// <summary>The heap grows in steps of at least this much (64 MiB).</summary>
    public const int TopPadBytes = 64 << 20;

    /// <summary>glibc's tunables for the settings above, no trimming, and one arena.</summary>
    public static IReadOnlyDictionary<string, string> EnvironmentVariables { get; } = new ReadOnlyDictionary<string, string>(
        new Dictionary<string, string>
        {
            ["MALLOC_ARENA_MAX"] = "1",
            ["MALLOC_MMAP_THRESHOLD_"] = MmapThresholdBytes.ToString(CultureInfo.InvariantCulture),
            ["MALLOC_TRIM_THRESHOLD_"] = int.MaxValue.ToString(CultureInfo.InvariantCulture),
            ["MALLOC_TOP_PAD_"] = TopPadBytes.ToString(CultureInfo.InvariantCulture),
        });
}
