using System.Diagnostics;
using System.Globalization;
using Ifcb.Models;
using TorchSharp;
using static TorchSharp.torch;

// Usage: Ifcb.Models.Bench [--steps N] [--threads T] [--models resnet18,inception_v3,alexnet,densenet121]
// Interleaves one TorchSharp step and one torchvision step (same batch, size, thread count), N times after one warm-up
// each, and prints the medians and their ratio. Defaults: 5 steps, libtorch's thread count, all four models.
var steps = IntOption("--steps", 5);
var threads = IntOption("--threads", torch.get_num_threads());
var models = (Option("--models") ?? "resnet18,inception_v3,alexnet,densenet121").Split(',', StringSplitOptions.RemoveEmptyEntries);
torch.set_num_threads(threads);

var workloads = new Dictionary<string, (int Batch, int Size)>
{
    ["resnet18"] = (16, 224),
    ["inception_v3"] = (8, 299),
    ["alexnet"] = (16, 224),
    ["densenet121"] = (16, 224),
};

Console.WriteLine($"training step = forward + backward + Adam, {steps} interleaved steps after 1 warm-up, {threads} threads");
Console.WriteLine($"{"model",-13} {"batch",5} {"size",4} {"TorchSharp s",13} {"torchvision s",14} {"ratio",6}");
foreach (var architecture in models)
{
    var (batch, size) = workloads.TryGetValue(architecture, out var w) ? w : (16, ModelZoo.InputSize(architecture));
    using var python = StartTorchvision(architecture, batch, size, threads);
    manual_seed(0);
    using var model = ModelZoo.Create(architecture, 10, pretrainedLayout: false);
    model.train();
    using var optimizer = optim.Adam(model.parameters(), lr: 0.001);
    using var input = rand(batch, 3, size, size);
    using var targets = randint(0, 10, [batch], dtype: ScalarType.Int64);

    var ours = new List<double>();
    var theirs = new List<double>();
    for (var i = 0; i <= steps; i++)
    {
        var stopwatch = Stopwatch.StartNew();
        using (NewDisposeScope())
        {
            var loss = ClassifierLoss.Compute(model.call(input), targets);
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
        }
        var ourSeconds = stopwatch.Elapsed.TotalSeconds;
        python.StandardInput.WriteLine("step");
        var theirSeconds = double.Parse(python.StandardOutput.ReadLine()!, CultureInfo.InvariantCulture);
        if (i == 0)
            continue; // warm-up
        ours.Add(ourSeconds);
        theirs.Add(theirSeconds);
    }
    python.StandardInput.WriteLine("quit");
    python.WaitForExit();
    var (a, b) = (Median(ours), Median(theirs));
    Console.WriteLine($"{architecture,-13} {batch,5} {size,4} {a,13:F3} {b,14:F3} {a / b,6:F2}");
}

static double Median(List<double> values)
{
    var sorted = values.Order().ToList();
    return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
}

static Process StartTorchvision(string architecture, int batch, int size, int threads)
{
    var start = new ProcessStartInfo("/usr/bin/python3")
    {
        RedirectStandardInput = true,
        RedirectStandardOutput = true,
    };
    start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "torchvision_step.py"));
    foreach (var argument in new object[] { architecture, batch, size, threads })
        start.ArgumentList.Add(Convert.ToString(argument, CultureInfo.InvariantCulture)!);
    var process = Process.Start(start) ?? throw new InvalidOperationException("could not start /usr/bin/python3");
    var ready = process.StandardOutput.ReadLine();
    if (ready != "ready")
        throw new InvalidOperationException($"torchvision_step.py did not start: {ready}");
    return process;
}

string? Option(string name)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
}

int IntOption(string name, int fallback) =>
    Option(name) is { } text ? int.Parse(text, CultureInfo.InvariantCulture) : fallback;
