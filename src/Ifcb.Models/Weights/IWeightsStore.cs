namespace Ifcb.Models.Weights;

/// <summary>
/// Where pretrained ImageNet state dicts live, by file name (<c>{name}.pth</c> or <c>{name}.safetensors</c>, see
/// <see cref="PretrainedWeights.FileNames"/>). Nothing is ever downloaded from the internet: files get here by import.
/// </summary>
public interface IWeightsStore
{
    /// <summary>Where <paramref name="fileName"/> is or would be, for messages (a path or a blob URI).</summary>
    string Describe(string fileName);

    /// <summary>The file's content, or null when the store does not have it.</summary>
    Task<Stream?> OpenReadAsync(string fileName, CancellationToken cancellationToken = default);

    /// <summary>Creates or replaces the file.</summary>
    Task WriteAsync(string fileName, Stream content, CancellationToken cancellationToken = default);
}
