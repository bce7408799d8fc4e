using Ifcb.Contracts;
using TorchSharp;

namespace Ifcb.Data;

/// <summary><see cref="ImgNorm"/> on TorchSharp tensors.</summary>
public static class ImgNormTensors
{
    /// <summary>
    /// Returns a new tensor <c>(x - mean) / std</c> for a float tensor shaped [3,H,W] or [B,3,H,W]; the caller owns it.
    /// </summary>
    public static torch.Tensor Apply(this ImgNorm norm, torch.Tensor images)
    {
        ArgumentNullException.ThrowIfNull(norm);
        ArgumentNullException.ThrowIfNull(images);
        var channelDim = images.dim() switch
        {
            3 => 0,
            4 => 1,
            _ => throw new ArgumentException($"Expected a [3,H,W] or [B,3,H,W] tensor, got {images.dim()} dimensions.", nameof(images)),
        };
        if (images.shape[channelDim] != 3)
            throw new ArgumentException($"Expected 3 channels, got {images.shape[channelDim]}.", nameof(images));
        long[] shape = channelDim == 0 ? [3, 1, 1] : [1, 3, 1, 1];
        using var mean = torch.tensor(norm.Mean.Select(m => (float)m).ToArray(), dtype: images.dtype, device: images.device).reshape(shape);
        using var std = torch.tensor(norm.Std.Select(s => (float)s).ToArray(), dtype: images.dtype, device: images.device).reshape(shape);
        using var centred = images.sub(mean);
        return centred.div(std);
    }
}
