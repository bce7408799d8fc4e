using Ifcb.Testing;

namespace Ifcb.Platform.Tests;

/// <summary>
/// The style rule the build cannot check: .editorconfig's max_line_length only guides editors, so this test holds
/// product code to it. Tests and generated code (obj/, bin/) are exempt.
/// </summary>
public sealed class CodeStyleTests
{
    private const int MaxLineLength = 140;

    private static readonly string[] ProductFolders = ["src", "services", "tools", "bench", "Ifcb.AppHost", "Ifcb.ServiceDefaults"];

    [Fact]
    public void Product_code_lines_are_at_most_140_characters()
    {
        var tooLong = ProductFolders
            .SelectMany(folder => Directory.EnumerateFiles(Path.Combine(RepoPaths.Root, folder), "*.cs", SearchOption.AllDirectories))
            .Select(file => Path.GetRelativePath(RepoPaths.Root, file))
            .Where(file => !IsBuildOutput(file))
            .Order(StringComparer.Ordinal)
            .SelectMany(file => File.ReadLines(Path.Combine(RepoPaths.Root, file))
                .Select((line, index) => (File: file, Line: index + 1, line.Length)))
            .Where(line => line.Length > MaxLineLength)
            .Select(line => $"{line.File}:{line.Line}: {line.Length} characters")
            .ToList();

        Assert.True(tooLong.Count == 0,
            $"{tooLong.Count} product code lines are longer than {MaxLineLength} characters (.editorconfig max_line_length):\n" +
            string.Join('\n', tooLong));
    }

    private static bool IsBuildOutput(string relativePath) =>
        relativePath.Split(Path.DirectorySeparatorChar).Any(part => part is "obj" or "bin");
}
