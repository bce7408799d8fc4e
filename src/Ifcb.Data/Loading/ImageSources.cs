using Ifcb.Data.Imaging;

namespace Ifcb.Data.Loading;

/// <summary>Where the loader gets an image's bytes. Implementations must be safe to call from several threads.</summary>
public interface IImageSource
{
    /// <exception cref="InvalidDataException">The image cannot be decoded.</exception>
    /// <exception cref="FileNotFoundException">The image does not exist.</exception>
    DecodedImage Load(string path);
}

/// <summary>Reads images from the local file system (a class folder tree or a materialised blob dataset cache).</summary>
public sealed class LocalFileImageSource : IImageSource
{
    public static LocalFileImageSource Instance { get; } = new();

    public DecodedImage Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"Image {path} does not exist.", path);
        return ImageDecoder.DecodeFile(path);
    }
}

/// <summary>Images held in memory as encoded bytes, keyed by the path used in the <c>LabelledImage</c>s.</summary>
public sealed class InMemoryImageSource(IReadOnlyDictionary<string, byte[]> encodedImages) : IImageSource
{
    public DecodedImage Load(string path) =>
        encodedImages.TryGetValue(path, out var bytes)
            ? ImageDecoder.Decode(bytes, path)
            : throw new FileNotFoundException($"Image {path} is not in the in-memory image set.", path);
}
