using System.Diagnostics;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Ifcb.Models.Tests;

/// <summary>Runs tests/Ifcb.Models.Tests/python/make_reference.py with Debian's torch 1.13.1 / torchvision 0.14.1.</summary>
public static class TorchvisionReference
{
    public const string Python = "/usr/bin/python3";

    public static string Script => Path.Combine(AppContext.BaseDirectory, "python", "make_reference.py");

    /// <summary>Runs the script once; fails the test with its stderr when it fails.</summary>
    public static string Run(string command, string outputDirectory, IEnumerable<string> specs)
    {
        var start = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Script);
        start.ArgumentList.Add(command);
        start.ArgumentList.Add(outputDirectory);
        foreach (var spec in specs)
            start.ArgumentList.Add(spec);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {Python}");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{Python} {Script} {command} failed ({process.ExitCode}):\n{stderr.Result}\n{stdout}");
        return stdout;
    }

    public static Dictionary<string, Tensor> ReadTensors(string path)
    {
        using var stream = File.OpenRead(path);
        return Weights.StateDictFile.Read(stream, Weights.WeightsFormat.PyTorch);
    }

    public static void WriteTensors(string path, Dictionary<string, Tensor> tensors)
    {
        using var stream = File.Create(path);
        PyTorchPickler.PickleStateDict(stream, tensors);
    }

    /// <summary>
    /// One training-mode forward (no gradients) so BatchNorm running statistics fit the weights: with the default 0/1
    /// statistics a freshly initialised inception_v3 overflows to NaN in eval mode, in torchvision as here.
    /// inception_v3's aux head needs 299-pixel inputs in training mode.
    /// </summary>
    public static void CalibrateBatchNorm(ClassifierNet model, int side)
    {
        using var scope = NewDisposeScope();
        var calibrationSide = model.Architecture == "inception_v3" ? 299 : side;
        var norms = model.modules().OfType<TorchSharp.Modules.BatchNorm2d>().ToList();
        foreach (var norm in norms)
            norm.momentum = null; // cumulative average: one batch sets the statistics outright
        model.train();
        using (no_grad())
            model.call(rand(2, 3, calibrationSide, calibrationSide));
        foreach (var norm in norms)
            norm.momentum = 0.1;
        model.eval();
    }

    public static double MaxAbsDifference(Tensor a, Tensor b)
    {
        Assert.Equal(a.shape, b.shape);
        return (a - b).abs().max().to_type(ScalarType.Float64).item<double>();
    }
}

/// <summary>A fresh temporary directory, deleted with the fixture.</summary>
public class TemporaryDirectory : IDisposable
{
    public TemporaryDirectory() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "ifcb-models-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (disposing && Directory.Exists(Path))
            Directory.Delete(Path, recursive: true);
    }
}
