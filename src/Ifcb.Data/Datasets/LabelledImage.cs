namespace Ifcb.Data.Datasets;

/// <summary>One training/validation image: its full path (local file or materialised cache file) and 0-based class index.</summary>
public sealed record LabelledImage(string Path, int ClassIndex);

/// <summary>
/// The image extensions neuston accepts (torchvision's <c>IMG_EXTENSIONS</c>). We match them case-insensitively, so
/// <c>.PNG</c> files count; neuston compared case-sensitively and silently ignored them.
/// </summary>
public static class ImageFileTypes
{
    public static IReadOnlyList<string> Extensions { get; } = [".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"];

    public static bool IsImageFile(string fileName) =>
        Extensions.Contains(Path.GetExtension(fileName), StringComparer.OrdinalIgnoreCase);
}
