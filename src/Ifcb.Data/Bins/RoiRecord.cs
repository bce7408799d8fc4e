namespace Ifcb.Data.Bins;

/// <summary>
/// The ADC fields of one ROI. <see cref="TargetNumber"/> is the 1-based ADC row (pyifcb's target number), not the
/// trigger column: a trigger can produce several ROIs.
/// </summary>
public sealed record RoiRecord(int TargetNumber, int Trigger, int X, int Y, int Width, int Height, long StartByte)
{
    public long ByteCount => (long)Width * Height;
}
