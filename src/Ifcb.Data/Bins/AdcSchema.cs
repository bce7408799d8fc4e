namespace Ifcb.Data.Bins;

/// <summary>0-based ADC column positions (pyifcb <c>adc.py</c>).</summary>
public sealed record AdcSchema(int Trigger, int RoiX, int RoiY, int RoiWidth, int RoiHeight, int StartByte)
{
    public static AdcSchema V1 { get; } = new(0, 9, 10, 11, 12, 13);
    public static AdcSchema V2 { get; } = new(0, 13, 14, 15, 16, 17);

    public static AdcSchema For(BinSchema schema) => schema == BinSchema.V1 ? V1 : V2;

    /// <summary>The fewest columns a row must have to locate its ROI.</summary>
    public int RequiredColumns => StartByte + 1;
}
