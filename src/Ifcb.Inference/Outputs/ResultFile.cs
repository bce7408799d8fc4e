namespace Ifcb.Inference.Outputs;

/// <summary>Writes a result file in the format its extension names: <c>.h5</c>, <c>.json</c> or <c>.csv</c>.</summary>
public static class ResultFile
{
    public static IReadOnlyList<string> SupportedExtensions { get; } = [".h5", ".json", ".csv"];

    /// <exception cref="ArgumentException">Unsupported extension (neuston's <c>.mat</c> included: use .h5 or .json).</exception>
    public static void CheckExtension(string path)
    {
        var extension = Path.GetExtension(path);
        if (!SupportedExtensions.Contains(extension, StringComparer.OrdinalIgnoreCase))
            throw new ArgumentException(
                $"Output \"{path}\": the extension selects the format and must be one of {string.Join(", ", SupportedExtensions)}" +
                (extension.Equals(".mat", StringComparison.OrdinalIgnoreCase)
                    ? " (.mat is not written by this platform; .h5 holds the same fields)."
                    : "."),
                nameof(path));
    }

    /// <summary>
    /// Writes <paramref name="output"/> to <paramref name="path"/> (folders created). The file is written under a temporary
    /// name and then renamed, so an interrupted run never leaves a partial file that a later run without clobber would
    /// take for a finished one.
    /// </summary>
    /// <param name="format"><see cref="OutfileFormat.V4"/> writes <c>.csv</c> files as pyifcb's v4 CSV
    /// (<see cref="PyifcbCsvWriter"/>); <c>.h5</c> and <c>.json</c> are the same in both.</param>
    public static void Write(string path, ClassificationOutput output, OutfileFormat format = OutfileFormat.V3)
    {
        ArgumentNullException.ThrowIfNull(output);
        CheckExtension(path);
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null)
            Directory.CreateDirectory(directory);
        var temporary = path + ".partial";
        try
        {
            switch (Path.GetExtension(path).ToLowerInvariant())
            {
                case ".h5":
                    Hdf5ResultWriter.Write(temporary, output);
                    break;
                case ".json":
                    using (var stream = File.Create(temporary))
                        JsonResultWriter.Write(stream, output);
                    break;
                default:
                    using (var stream = File.Create(temporary))
                    {
                        if (format == OutfileFormat.V4)
                            PyifcbCsvWriter.Write(stream, output);
                        else
                            CsvResultWriter.Write(stream, output);
                    }
                    break;
            }
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
                File.Delete(temporary);
        }
    }
}
