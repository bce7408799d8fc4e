using PureHDF;
using PureHDF.Filters;
using PureHDF.VOL.Native;

namespace Ifcb.Inference.Outputs;

/// <summary>
/// neuston's "class_scores v3" HDF5 layout, which the IFCB dashboard reads: a dataset <c>metadata</c> carrying the
/// attributes <c>version</c>, <c>model_id</c>, <c>timestamp</c>, <c>bin_id</c>; datasets
/// <c>output_classes</c> (0-based), <c>output_scores</c> (N×C), <c>class_labels</c> (strings) and <c>roi_numbers</c>,
/// gzip-compressed. neuston's <c>metadata</c> is <c>h5py.Empty('f')</c> (a null dataspace); PureHDF 2.2 writes its
/// data-less <c>H5Dataset&lt;float&gt;()</c> as a scalar float instead. Readers only use its attributes.
/// Deliberate difference: neuston stores scores and classes as float16 and roi_numbers as uint16, which rounds scores
/// to ~3 significant digits and wraps target numbers above 65535. We write <c>output_scores</c> as float32 and
/// <c>output_classes</c>/<c>roi_numbers</c> as int32; h5py and the dashboard read either the same way. The
/// <c>metadata</c> attributes <c>scores_dtype</c>/<c>index_dtype</c> record this. For image runs (neuston crashes on
/// .h5) <c>bin_id</c> is omitted and an <c>input_images</c> string dataset replaces <c>roi_numbers</c>.
/// Additions: the <c>metadata</c> attributes also carry the run's provenance (see <see cref="RunProvenance"/>) and
/// <c>class_thresholds_source</c>; <c>output_classes_thresholded</c> (int32, gzip) holds each ROI's thresholded class
/// (<see cref="ClassThresholds.UnclassifiedIndex"/> = <c>unclassified</c>) and <c>class_thresholds</c> (float64, NaN =
/// none) the thresholds behind it.
/// </summary>
public static class Hdf5ResultWriter
{
    // Rows per chunk: compression works per chunk, and a whole bin (a few thousand ROIs) usually fits in one.
    private const int ChunkRows = 4096;
    // PureHDF's deflate takes levels 0, 1 or 9 only; scores of one bin are small, so the best ratio costs nothing.
    private const int GzipLevel = 9;

    public static void Write(string path, ClassificationOutput output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var rows = output.Scores.Count;
        var classes = output.Scores.NumClasses;
        if (rows == 0)
            throw new ArgumentException("An HDF5 result needs at least one row; empty bins are reported as failures instead.",
                nameof(output));

        var metadataAttributes = new Dictionary<string, object>
        {
            ["version"] = ClassificationOutput.Version,
            ["model_id"] = output.ModelId,
            ["timestamp"] = output.Timestamp,
            ["scores_dtype"] = "float32",
            ["index_dtype"] = "int32",
        };
        if (output.BinId is not null)
            metadataAttributes["bin_id"] = output.BinId;
        foreach (var (name, value) in output.Provenance?.Fields() ?? [])
            metadataAttributes[name] = value;
        metadataAttributes["class_thresholds_source"] = output.Thresholds?.Source ?? "none";

        var chunkRows = (uint)Math.Min(rows, ChunkRows);
        var file = new H5File
        {
            ["metadata"] = new H5Dataset<float>() { Attributes = metadataAttributes },
            ["output_classes"] = Compressed(output.Scores.Classes, [(ulong)rows], [chunkRows]),
            ["output_scores"] = Compressed(output.Scores.Scores, [(ulong)rows, (ulong)classes], [chunkRows, (uint)classes]),
            ["class_labels"] = output.ClassLabels.ToArray(),
            ["output_classes_thresholded"] = Compressed(output.ThresholdedClasses(), [(ulong)rows], [chunkRows]),
            ["class_thresholds"] = output.ThresholdValues(),
        };
        if (output.InputImages is not null)
            file["input_images"] = output.InputImages.ToArray();
        else
            file["roi_numbers"] = Compressed(output.RoiNumbers!.ToArray(), [(ulong)rows], [chunkRows]);
        file.Write(path);
    }

    private static H5Dataset Compressed(Array data, ulong[] dimensions, uint[] chunks) =>
        new(data, chunks: chunks, fileDims: dimensions, datasetCreation: new H5DatasetCreation(
            Filters: [new H5Filter(DeflateFilter.Id, new Dictionary<string, object> { [DeflateFilter.COMPRESSION_LEVEL] = GzipLevel })]));
}
