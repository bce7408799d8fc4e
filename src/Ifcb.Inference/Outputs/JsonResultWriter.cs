using System.Text.Json;

namespace Ifcb.Inference.Outputs;

/// <summary>neuston's JSON result: <c>{version, model_id, timestamp, class_labels, output_scores, output_classes}</c> plus
/// <c>bin_id</c> and <c>roi_numbers</c> (bins) or <c>input_images</c> (images). Scores are float32 written round-trip.
/// Additions: the run's provenance fields (see <see cref="RunProvenance"/>), <c>class_thresholds</c> (per class, null =
/// none), <c>class_thresholds_source</c> and <c>output_classes_thresholded</c> (per row, -1 = unclassified).</summary>
public static class JsonResultWriter
{
    public static void Write(Stream destination, ClassificationOutput output)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(output);
        using var json = new Utf8JsonWriter(destination);
        json.WriteStartObject();
        json.WriteString("version", ClassificationOutput.Version);
        json.WriteString("model_id", output.ModelId);
        json.WriteString("timestamp", output.Timestamp);
        foreach (var (name, value) in output.Provenance?.Fields() ?? [])
        {
            if (value is int number)
                json.WriteNumber(name, number);
            else
                json.WriteString(name, RunProvenance.Text(value));
        }
        json.WriteStartArray("class_labels");
        foreach (var label in output.ClassLabels)
            json.WriteStringValue(label);
        json.WriteEndArray();
        json.WriteStartArray("output_scores");
        for (var i = 0; i < output.Scores.Count; i++)
        {
            json.WriteStartArray();
            foreach (var score in output.Scores.Row(i))
                json.WriteNumberValue(score);
            json.WriteEndArray();
        }
        json.WriteEndArray();
        json.WriteStartArray("output_classes");
        foreach (var winner in output.Scores.Classes)
            json.WriteNumberValue(winner);
        json.WriteEndArray();
        json.WriteStartArray("class_thresholds");
        foreach (var threshold in output.ThresholdValues())
        {
            if (double.IsNaN(threshold))
                json.WriteNullValue();
            else
                json.WriteNumberValue(threshold);
        }
        json.WriteEndArray();
        json.WriteString("class_thresholds_source", output.Thresholds?.Source ?? "none");
        json.WriteStartArray("output_classes_thresholded");
        foreach (var label in output.ThresholdedClasses())
            json.WriteNumberValue(label);
        json.WriteEndArray();
        if (output.InputImages is not null)
        {
            json.WriteStartArray("input_images");
            foreach (var image in output.InputImages)
                json.WriteStringValue(image);
            json.WriteEndArray();
        }
        else
        {
            json.WriteString("bin_id", output.BinId);
            json.WriteStartArray("roi_numbers");
            foreach (var roi in output.RoiNumbers!)
                json.WriteNumberValue(roi);
            json.WriteEndArray();
        }
        json.WriteEndObject();
    }
}
