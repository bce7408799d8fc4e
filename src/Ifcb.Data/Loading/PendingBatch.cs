namespace Ifcb.Data.Loading;

/// <summary>A batch being decoded: its images' slots in a pooled buffer and how many are still to do.</summary>
internal sealed class PendingBatch(int number, int firstPosition, int[] positions, float[] slots)
{
    public int Number { get; } = number;
    public int FirstPosition { get; } = firstPosition;
    public int[] Positions { get; } = positions;
    public float[] Slots { get; } = slots;
    public bool[] Ok { get; } = new bool[positions.Length];
    public ImageFailure?[] Errors { get; } = new ImageFailure?[positions.Length];
    public int Remaining = positions.Length;
    public bool Consumed;
    public TaskCompletionSource<Batch> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}
