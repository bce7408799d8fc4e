using Ifcb.Contracts;
using Ifcb.Data.Imaging;
using Ifcb.Models;
using Ifcb.Models.Checkpoints;
using Ifcb.Platform;
using TorchSharp;
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
/// Not thread-safe: one classifier per thread (dispose scopes and the reused input buffer are per instance).
/// </summary>
public sealed class BatchClassifier
{
    private readonly ClassifierNet _model;
    private readonly ImagePreprocessor _preprocessor;
    private readonly Device _device;
    private float[] _buffer = [];

    /// <exception cref="IfcbException">InvalidArgument: the batch is over <see cref="Limits.MaxBatch"/> or, at the model's
    /// resize, its input tensor over <see cref="Limits.MaxBatchTensorBytes"/>.</exception>
    public BatchClassifier(LoadedCheckpoint checkpoint, int batchSize = Defaults.BatchSize, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        Limits.CheckBatch(batchSize, checkpoint.Hparams.Resize);
        _model = checkpoint.Model;
        Hparams = checkpoint.Hparams;
        if (Hparams.Classes.Count != _model.NumClasses)
            throw new ArgumentException(
                $"The checkpoint lists {Hparams.Classes.Count} classes but its model has {_model.NumClasses} outputs.", nameof(checkpoint));
        BatchSize = batchSize;
        _device = device ?? CPU;
        _preprocessor = new ImagePreprocessor(new PreprocessOptions(Hparams.Resize, Norm: Hparams.ImgNorm));
        _model.to(_device);
        _model.eval();
    }

    public ModelHparams Hparams { get; }

    public int BatchSize { get; }

    public int NumClasses => _model.NumClasses;

    /// <summary>Classifies the images in order, <see cref="BatchSize"/> at a time.</summary>
    /// <exception cref="OperationCanceledException">Cancelled between batches.</exception>
    public ClassScores Classify(IReadOnlyList<DecodedImage> images, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(images);
        var classCount = _model.NumClasses;
        var scores = new float[images.Count * classCount];
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

            // Synchronous per batch: dispose scopes belong to the thread that opened them.
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var input = tensor(buffer, [count, 3, size, size]).to(_device);
            var probabilities = _model.Logits(input).softmax(1).cpu();
            var winners = probabilities.argmax(1);
            probabilities.data<float>().ToArray().CopyTo(scores, start * classCount);
            var winnerValues = winners.data<long>().ToArray();
            for (var i = 0; i < count; i++)
                classes[start + i] = (int)winnerValues[i];
        }
        return new ClassScores(images.Count, classCount, scores, classes);
    }
}
