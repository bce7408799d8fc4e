using Ifcb.Models;
using Ifcb.Models.Checkpoints;
using Ifcb.Models.Onnx;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using static TorchSharp.torch;

namespace Ifcb.Inference;

/// <summary>What runs the model in RUN (<c>ifcb run --engine</c>).</summary>
public enum InferenceEngine
{
    /// <summary>The TorchSharp model itself, on the CPU or a GPU; the input is normalised before the model.</summary>
    Torch,

    /// <summary>
    /// The model exported to ONNX (<see cref="OnnxExport"/>, the same graph <c>ifcb models export</c> writes) and run by
    /// ONNX Runtime on the CPU; the img-norm is inside the graph, so the input stays in [0,1].
    /// </summary>
    Onnx,
}

/// <summary>Softmax probabilities for a batch of preprocessed images.</summary>
internal interface IModelScorer : IDisposable
{
    /// <summary>True when the model applies the img-norm itself (the ONNX graph), so the input must stay in [0,1].</summary>
    bool AppliesImgNorm { get; }

    /// <summary>Writes <c>[count, classes]</c> probabilities, row-major, for <c>count</c> images of <c>3·size·size</c> floats.</summary>
    void Score(float[] input, int count, int size, Span<float> probabilities);
}

/// <summary>The TorchSharp model in eval mode, no autograd, softmax of the main logits.</summary>
internal sealed class TorchScorer : IModelScorer
{
    private readonly ClassifierNet _model;
    private readonly Device _device;

    public TorchScorer(ClassifierNet model, Device device)
    {
        _model = model;
        _device = device;
        _model.to(_device);
        _model.eval();
    }

    public bool AppliesImgNorm => false;

    public void Score(float[] input, int count, int size, Span<float> probabilities)
    {
        // Synchronous per batch: dispose scopes belong to the thread that opened them.
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var batch = tensor(input, [count, 3, size, size]).to(_device);
        _model.Logits(batch).softmax(1).cpu().data<float>().ToArray().CopyTo(probabilities);
    }

    /// <summary>The model belongs to the checkpoint's owner.</summary>
    public void Dispose()
    {
    }
}

/// <summary>
/// The checkpoint exported to ONNX in memory and run by one ONNX Runtime session. The session uses as many threads as
/// libtorch (<c>torch.get_num_threads</c>), so both engines get the same cores; the input buffer is passed pinned, not
/// copied.
/// </summary>
internal sealed class OnnxScorer : IModelScorer
{
    private readonly InferenceSession _session;
    private readonly RunOptions _run = new();
    private readonly string[] _outputs = [OnnxExport.ProbabilitiesName];

    public OnnxScorer(LoadedCheckpoint checkpoint)
    {
        var graph = OnnxExport.ToBytes(checkpoint.Model, checkpoint.Hparams);
        using var options = new SessionOptions
        {
            IntraOpNumThreads = get_num_threads(),
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        _session = new InferenceSession(graph, options);
    }

    public bool AppliesImgNorm => true;

    public void Score(float[] input, int count, int size, Span<float> probabilities)
    {
        using var batch = OrtValue.CreateTensorValueFromMemory(input, [count, 3, size, size]);
        using var results = _session.Run(_run, [OnnxExport.InputName], [batch], _outputs);
        results[0].GetTensorDataAsSpan<float>().CopyTo(probabilities);
    }

    public void Dispose()
    {
        _session.Dispose();
        _run.Dispose();
    }
}
