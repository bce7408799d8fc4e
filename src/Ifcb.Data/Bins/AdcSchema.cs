namespace Ifcb.Data.Bins;

/// <summary>0-based ADC column positions (pyifcb <c>adc.py</c>).</summary>
public sealed record AdcSchema(int Trigger, int RoiX, int RoiY, int RoiWidth, int RoiHeight, int StartByte)
{
    public static AdcSchema V1 { get; } = new(0, 9, 10, 11, 12, 13) { TriggerOpenTime = 7, FrameGrabTime = 8 };
    public static AdcSchema V2 { get; } = new(0, 13, 14, 15, 16, 17) { AdcTime = 1, RunTime = 22, InhibitTime = 23 };

    public static AdcSchema For(BinSchema schema) => schema == BinSchema.V1 ? V1 : V2;

    /// <summary>The fewest columns a row must have to locate its ROI.</summary>
    public int RequiredColumns => StartByte + 1;

    // The time columns (seconds) that ml_analyzed needs; null where the schema has no such column.

    /// <summary>v1 <c>triggerOpenTime</c>.</summary>
    public int? TriggerOpenTime { get; init; }

    /// <summary>v1 <c>frameGrabTime</c>.</summary>
    public int? FrameGrabTime { get; init; }

    /// <summary>v2 <c>ADC_time</c> (pyifcb's <c>ADC_TIME</c>, older pyifcb's <c>processingEndTime</c>).</summary>
    public int? AdcTime { get; init; }

    /// <summary>v2 <c>runTime</c>: time since the syringe started, per trigger.</summary>
    public int? RunTime { get; init; }

    /// <summary>v2 <c>inhibitTime</c>: cumulative time the instrument could not trigger.</summary>
    public int? InhibitTime { get; init; }
}
