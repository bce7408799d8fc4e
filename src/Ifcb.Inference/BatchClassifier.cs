using Ifcb.Contracts;
using Ifcb.Data.Imaging;
using Ifcb.Models.Checkpoints;
using Ifcb.Platform;
using static TorchSharp.torch;

namespace Ifcb.Inference;

/// <summary>Softmax scores of N images over C classes, row-major, and each row's argmax (0-based).</summary>
public sealed record ClassScores(int Count, int NumClasses, float[] Scores, int[] Classes)
{
    public ReadOnlySpan<float> Row(int index) => Scores.AsSpan(index * NumClasses, NumClasses);
}

/// <summary>
/// Runs a trained model on decoded images exactly as training preprocessed them: Pillow bilinear resize to the model's
/// <c>resize</c>, /255, then the model's img_norm (for image inputs too; neuston forgets it in <c>RUN --type img</c>).
/// inception_v3's <c>transform_input</c> is part of the model. Eval mode, no autograd, softmax of the main logits.
/// The <see cref="InferenceEngine.Onnx"/> engine runs the exported graph, which holds the img_norm, on [0,1] input.
/// Not thread-safe: one classifier per thread (dispose scopes and the reused input buffer are per instance).
/// </summary>
public sealed class BatchClassifier : IDisposable
{
    private readonly IModelScorer _scorer;
    private readonly ImagePreprocessor _preprocessor;
    private float[] _buffer = [];

    /// <param name="device">Where the torch engine runs the model; null = CPU. The onnx engine runs on the CPU only.</param>
    /// <exception cref="IfcbException">InvalidArgument: the batch is over <see cref="Limits.MaxBatch"/> or, at the model's
    /// resize, its input tensor over <see cref="Limits.MaxBatchTensorBytes"/>.</exception>
    /// <exception cref="ArgumentException">The checkpoint's classes do not match its model, or the onnx engine on a GPU.</exception>
    public BatchClassifier(LoadedCheckpoint checkpoint, int batchSize = Defaults.BatchSize, Device? device = null,
        InferenceEngine engine = InferenceEngine.Torch)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        Limits.CheckBatch(batchSize, checkpoint.Hparams.Resize);
        Hparams = checkpoint.Hparams;
        NumClasses = checkpoint.Model.NumClasses;
        if (Hparams.Classes.Count != NumClasses)
            throw new ArgumentException(
                $"The checkpoint lists {Hparams.Classes.Count} classes but its model has {NumClasses} outputs.", nameof(checkpoint));
        device ??= CPU;
        if (engine == InferenceEngine.Onnx && device.type != TorchSharp.DeviceType.CPU)
            throw new ArgumentException(
                $"The onnx engine runs on the CPU (this build's ONNX Runtime has no GPU provider); use --device cpu or --engine torch.",
                nameof(device));
        BatchSize = batchSize;
        Engine = engine;
        _scorer = engine == InferenceEngine.Onnx ? new OnnxScorer(checkpoint) : new TorchScorer(checkpoint.Model, device);
        _preprocessor = new ImagePreprocessor(new PreprocessOptions(Hparams.Resize, Norm: _scorer.AppliesImgNorm ? null : Hparams.ImgNorm));
    }

    public ModelHparams Hparams { get; }

    public int BatchSize { get; }

    public int NumClasses { get; }

    public InferenceEngine Engine { get; }

    /// <summary>Classifies the images in order, <see cref="BatchSize"/> at a time.</summary>
    /// <exception cref="OperationCanceledException">Cancelled between batches.</exception>
    public ClassScores Classify(IReadOnlyList<DecodedImage> images, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(images);
        var scores = new float[images.Count * NumClasses];
        var classes = new int[images.Count];
        var size = _preprocessor.Options.Size;
        var length = _preprocessor.Options.TensorLength;
        for (var start = 0; start < images.Count; start += BatchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var count = Math.Min(BatchSize, images.Count - start);
            if (_buffer.Length != count * length)
                _buffer = new float[count * length];
            var buffer = _buffer;
            Parallel.For(0, count, i =>
                _preprocessor.Process(images[start + i], training: false, random: null, buffer.AsSpan(i * length, length)));
            _scorer.Score(buffer, count, size, scores.AsSpan(start * NumClasses, count * NumClasses));
            for (var i = start; i < start + count; i++)
                classes[i] = ArgMax(scores.AsSpan(i * NumClasses, NumClasses));
        }
        return new ClassScores(images.Count, NumClasses, scores, classes);
    }

    public void Dispose() => _scorer.Dispose();

    // The first of equal maxima, as torch.argmax.
    private static int ArgMax(ReadOnlySpan<float> row)
    {
        var best = 0;
        for (var c = 1; c < row.Length; c++)
        {
            if (row[c] > row[best])
                best = c;
        }
        return best;
    }
}
