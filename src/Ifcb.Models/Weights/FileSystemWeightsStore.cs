namespace Ifcb.Models.Weights;

/// <summary>Weights files in one directory (the CLI's local mode and tests).</summary>
public sealed class FileSystemWeightsStore(string directory) : IWeightsStore
{
    public string Directory { get; } = Path.GetFullPath(directory);

    public string Describe(string fileName) => $"file {PathOf(fileName)}";

    public Task<Stream?> OpenReadAsync(string fileName, CancellationToken cancellationToken = default)
    {
        var path = PathOf(fileName);
        Stream? stream = File.Exists(path) ? File.OpenRead(path) : null;
        return Task.FromResult(stream);
    }

    public async Task WriteAsync(string fileName, Stream content, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        System.IO.Directory.CreateDirectory(Directory);
        var path = PathOf(fileName);
        // Write beside and move, so a reader never sees a half-written weights file.
        var partial = path + ".partial";
        await using (var file = File.Create(partial))
            await content.CopyToAsync(file, cancellationToken);
        File.Move(partial, path, overwrite: true);
    }

    private string PathOf(string fileName)
    {
        if (string.IsNullOrEmpty(fileName) || fileName != Path.GetFileName(fileName))
            throw new ArgumentException($"'{fileName}' must be a plain file name.", nameof(fileName));
        return Path.Combine(Directory, fileName);
    }
}
