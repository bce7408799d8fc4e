using System.Diagnostics.Metrics;

namespace Ifcb.Training.Engine;

/// <summary>OpenTelemetry instruments for training (meter "Ifcb.Training"), shown in the Aspire dashboard.</summary>
public static class TrainingMetrics
{
    public const string MeterName = "Ifcb.Training";
    private static readonly Meter Meter = new(MeterName);
    private static readonly Counter<long> EpochsCompleted =
        Meter.CreateCounter<long>("ifcb.training.epochs", description: "Epochs completed");
    private static readonly Histogram<double> TrainLoss = Meter.CreateHistogram<double>("ifcb.training.train_loss");
    private static readonly Histogram<double> ValLoss = Meter.CreateHistogram<double>("ifcb.training.val_loss");
    private static readonly Histogram<double> F1Weighted = Meter.CreateHistogram<double>("ifcb.training.f1_weighted");
    private static readonly Histogram<double> ImagesPerSecond =
        Meter.CreateHistogram<double>("ifcb.training.images_per_second", unit: "{image}/s");
    private static readonly Histogram<double> EpochSeconds = Meter.CreateHistogram<double>("ifcb.training.epoch_duration", unit: "s");

    public static void RecordEpoch(string modelId, EpochRecord epoch)
    {
        var tag = new KeyValuePair<string, object?>("ifcb.model_id", modelId);
        EpochsCompleted.Add(1, tag);
        TrainLoss.Record(epoch.TrainLoss, tag);
        ValLoss.Record(epoch.ValLoss, tag);
        F1Weighted.Record(epoch.F1Weighted, tag);
        ImagesPerSecond.Record(epoch.ImagesPerSecond, tag);
        EpochSeconds.Record(epoch.Seconds, tag);
    }
}
