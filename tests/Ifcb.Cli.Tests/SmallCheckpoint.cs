using Ifcb.Contracts;
using Ifcb.Models;
using Ifcb.Models.Checkpoints;
using static TorchSharp.torch;

namespace Ifcb.Cli.Tests;

/// <summary>A squeezenet1_1 checkpoint at 64 pixels with a per-channel img-norm: small enough to export and run in seconds.</summary>
internal static class SmallCheckpoint
{
    public static readonly IReadOnlyList<string> Classes = ["Mesodinium_major", "Strombidium-like", "detritus, small"];
    public static readonly ImgNorm Norm = ImgNorm.Parse("0.66,0.65,0.64", "0.22,0.23,0.21");

    /// <summary>Writes <c>model.ifcbmodel</c> in <paramref name="folder"/>; the model it holds stays with the caller.</summary>
    public static string Write(string folder, out ClassifierNet model)
    {
        manual_seed(11);
        model = ModelZoo.Create("squeezenet1_1", Classes.Count, pretrainedLayout: false);
        model.eval();
        var hparams = new ModelHparams("squeezenet1_1", Classes, 64, Norm, false, 11, "export-test", "train-1", null,
            DateTimeOffset.UnixEpoch, "tests");
        var path = Path.Combine(folder, "model.ifcbmodel");
        using var file = File.Create(path);
        Checkpoint.Save(file, hparams, model);
        return path;
    }
}
