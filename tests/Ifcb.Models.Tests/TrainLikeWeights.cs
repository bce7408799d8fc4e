using Ifcb.Data.Imaging;
using Ifcb.Testing;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ifcb.Models.Tests;

/// <summary>
/// Untrained weights that behave like a trained network's, for comparisons at float32 precision: float32 rounding must
/// stay far below the 1e-4 being tested (measured against TorchSharp in float64 while writing the ONNX tests), and the
/// logits must differ from class to class. The zoo's from-scratch init at a test-sized input is neither: neuston's
/// inception_v3 init (std 0.1) lets one image's activations outgrow the others' exponentially, so BatchNorm statistics
/// from a few images leave every other image with all-zero features; statistics that normalise channels which barely
/// vary blow rounding up by orders of magnitude; and AlexNet's default init leaves its logits within 0.01 of each other.
/// </summary>
public static class TrainLikeWeights
{
    /// <summary>
    /// With BatchNorm: convolutions at PyTorch's default init, BatchNorm scales ×0.3 (trained residual nets end their
    /// blocks with small scales) and running statistics measured layer by layer on <paramref name="calibration"/> (real
    /// ROIs other than the ones compared), each channel's variance floored by its layer's mean variance. Without
    /// BatchNorm (AlexNet, VGG, SqueezeNet): the zoo's init, with the head scaled so the logits vary by about 1.
    /// </summary>
    public static void Apply(ClassifierNet model, Tensor calibration)
    {
        model.eval();
        var norms = model.modules().OfType<BatchNorm2d>().ToList();
        if (norms.Count == 0)
        {
            ScaleHead(model, calibration);
            return;
        }
        using (no_grad())
        {
            foreach (var conv in model.modules().OfType<Conv2d>())
                conv.reset_parameters();
            foreach (var norm in norms)
                norm.weight!.mul_(0.3);
        }
        // Set in eval mode just before each BatchNorm runs, so every layer's statistics describe the inputs it will see.
        var hooks = norms.Select(norm => norm.register_forward_pre_hook((_, x) =>
        {
            using (no_grad())
            {
                long[] perChannel = [0, 2, 3];
                using var variance = x.var(perChannel, unbiased: false);
                norm.running_mean!.copy_(x.mean(perChannel));
                norm.running_var!.copy_(variance + variance.mean());
            }
            return x;
        })).ToList();
        using (no_grad())
            model.Logits(calibration).Dispose();
        foreach (var hook in hooks)
            hook.remove();
    }

    /// <summary>The 30 sample ROIs at <paramref name="side"/> in name order, [0,1], as RUN preprocesses them, without img-norm.</summary>
    public static Tensor SampleRois(int side)
    {
        var preprocessor = new ImagePreprocessor(new PreprocessOptions(side));
        var folder = Path.Combine(RepoPaths.Root, "testdata", "training-sample");
        var files = Directory.EnumerateFiles(folder, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal);
        return stack([.. files.Select(f => tensor(preprocessor.Process(ImageDecoder.DecodeFile(f)), [3, side, side]))]);
    }

    // The head is linear (squeezenet's is a convolution followed by ReLU and pooling, positively homogeneous), so scaling
    // its weight and bias scales the logits.
    private static void ScaleHead(ClassifierNet model, Tensor calibration)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var scale = 1 / model.Logits(calibration).std().item<float>();
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var key in model.HeadKeys)
            parameters[key].mul_(scale);
    }
}
