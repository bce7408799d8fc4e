using Ifcb.Contracts;

namespace Ifcb.Protos;

/// <summary>An <see cref="ImgNorm"/> on the wire: the <see cref="ImgNormValues"/> message, both ways.</summary>
public static class ImgNormProtos
{
    public static ImgNormValues ToProto(this ImgNorm norm)
    {
        ArgumentNullException.ThrowIfNull(norm);
        return new ImgNormValues { Mean = { norm.Mean }, Std = { norm.Std } };
    }

    /// <exception cref="FormatException">Not 1 or 3 finite means and as many positive stds.</exception>
    public static ImgNorm ToImgNorm(this ImgNormValues message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.Std.Count != message.Mean.Count)
            throw new FormatException(
                $"img_norm has {message.Mean.Count} means but {message.Std.Count} stds; give as many of each (1 or 3).");
        return new ImgNorm(message.Mean, message.Std);
    }
}
