using TorchSharp;
using static TorchSharp.torch;

namespace Ifcb.Data.Loading;

/// <summary>
/// One batch. <see cref="Images"/> ([B,3,S,S] float32) and <see cref="Labels"/> ([B] int64) are created on first access,
/// on the calling thread, so they join a <c>torch.NewDisposeScope()</c> active there; otherwise dispose the batch
/// (which disposes the tensors it created) or take ownership by calling <c>DetachFromDisposeScope</c>/<c>MoveToOuterDisposeScope</c>.
/// The tensors are zero-copy views of a buffer the loader reuses once the batch is disposed: use them (or
/// <c>.to(device)</c>/<c>.clone()</c> them) before disposing the batch. An undisposed batch just costs a fresh buffer.
/// B can be smaller than the batch size for the last batch or when corrupt images were skipped.
/// </summary>
public sealed class Batch : IDisposable
{
    private readonly float[] _pixels;
    private readonly long[] _labels;
    private readonly int _imageLength;
    private readonly Action<float[]>? _returnBuffer;
    private Tensor? _images;
    private Tensor? _labelTensor;
    private bool _disposed;

    /// <summary>A batch of <c>labels.Length</c> images whose CHW data fill <paramref name="pixels"/> from its start.</summary>
    internal Batch(float[] pixels, int imageLength, long[] labels, Action<float[]>? returnBuffer)
    {
        _pixels = pixels;
        _imageLength = imageLength;
        _labels = labels;
        _returnBuffer = returnBuffer;
    }

    /// <summary>0-based batch number within the epoch.</summary>
    public int Number { get; internal init; }

    /// <summary>Images in this batch (B).</summary>
    public int Count => _labels.Length;

    /// <summary>Positions of the batch's images in the loader's image list, in batch order.</summary>
    public IReadOnlyList<int> Indices { get; internal init; } = [];

    /// <summary>Images of this batch's slot that were skipped.</summary>
    public IReadOnlyList<ImageFailure> Failures { get; internal init; } = [];

    /// <summary>CHW float data of image <paramref name="i"/> of the batch (no tensor needed).</summary>
    public ReadOnlySpan<float> ImageData(int i)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)i, (uint)Count, nameof(i));
        return _pixels.AsSpan(i * _imageLength, _imageLength);
    }

    public ReadOnlySpan<long> LabelData => _labels;

    public Tensor Images
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_images is null)
            {
                // from_array shares the managed buffer (no copy): copying 100+ MB into fresh libtorch memory per batch
                // cost more than decoding it. The view keeps the storage (and the pinned buffer) alive.
                var side = (long)Math.Sqrt(_imageLength / 3);
                using var flat = torch.from_array(_pixels);
                using var used = flat.narrow(0, 0, (long)Count * _imageLength);
                _images = used.view(Count, 3, side, side);
            }
            return _images;
        }
    }

    public Tensor Labels
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _labelTensor ??= torch.from_array(_labels);
        }
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _images?.Dispose();
        _labelTensor?.Dispose();
        _returnBuffer?.Invoke(_pixels);
    }
}
