using System.Diagnostics;
using System.Globalization;
using Ifcb.Models;
using TorchSharp;
using static TorchSharp.torch;

// Usage: Ifcb.Models.Bench [--steps N] [--threads T] [--models resnet18,inception_v3,alexnet,densenet121] [--glibc-defaults]
//
// Three legs per model, interleaved step by step (same batch, input size, thread count), N measured steps after one
// warm-up each; medians are printed:
//   ours      our C# model (Ifcb.Models) in TorchSharp 0.107 / libtorch 2.10
//   tv-py     the torchvision model in Debian's PyTorch 1.13 (/usr/bin/python3) — the issue's reference
//   tv-ts     that same torchvision model, scripted by Debian's PyTorch (torch.jit.script) and trained inside TorchSharp's
//             libtorch 2.10. Same graph as tv-py, same libtorch as ours: ours/tv-ts is the cost of our module code,
//             tv-ts/tv-py is the cost (or gain) of the different libtorch build.
// Each leg is also split into forward (incl. loss) / backward / Adam so a gap can be located.
//
// All legs run with NativeAllocator's glibc malloc settings, as the Training service does (this process via mallopt,
// Python via the environment variables); --glibc-defaults runs all of them with glibc's defaults instead. On a machine
// where page faults are expensive the defaults dominate the step time and make the libtorch builds differ by how much
// they allocate rather than by how fast they compute.
var glibcDefaults = args.Contains("--glibc-defaults");
var malloc = glibcDefaults ? "glibc-defaults" : NativeAllocator.Configure();
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

Console.WriteLine($"training step = forward + backward + Adam, {steps} interleaved steps after 1 warm-up, {threads} threads, " +
    $"malloc: {malloc}; medians in seconds");
Console.WriteLine($"{"model",-13} {"batch",5} {"size",4} {"ours",7} {"tv-py",7} {"tv-ts",7} " +
    $"{"ours/tv-py",10} {"ours/tv-ts",10} {"tv-ts/tv-py",11}");
var breakdowns = new List<string>();
var scriptDirectory = Directory.CreateTempSubdirectory("ifcb-models-bench-");
try
{
    foreach (var architecture in models)
    {
        var (batch, size) = workloads.TryGetValue(architecture, out var w) ? w : (16, ModelZoo.InputSize(architecture));
        var scriptPath = Path.Combine(scriptDirectory.FullName, architecture + ".pt");
        using var python = StartTorchvision(architecture, batch, size, threads, scriptPath, glibcDefaults);

        manual_seed(0);
        using var model = ModelZoo.Create(architecture, 10, pretrainedLayout: false);
        model.train();
        using var optimizer = optim.Adam(model.parameters(), lr: 0.001);
        using var scripted = jit.load(scriptPath);
        scripted.train();
        using var scriptedOptimizer = optim.Adam(scripted.parameters(), lr: 0.001);
        using var input = rand(batch, 3, size, size);
        using var targets = randint(0, 10, [batch], dtype: ScalarType.Int64);

        var ours = new List<Step>();
        var pythonSteps = new List<Step>();
        var scriptSteps = new List<Step>();
        for (var i = 0; i <= steps; i++)
        {
            var ourStep = Measure(() => ClassifierLoss.ForwardLoss(model, input, targets), optimizer);
            var scriptStep = Measure(() => ScriptedForwardLoss(scripted, input, targets), scriptedOptimizer);
            python.StandardInput.WriteLine("step");
            var pythonStep = Step.Parse(python.StandardOutput.ReadLine()!);
            if (i == 0)
                continue; // warm-up
            ours.Add(ourStep);
            scriptSteps.Add(scriptStep);
            pythonSteps.Add(pythonStep);
        }
        python.StandardInput.WriteLine("quit");
        python.WaitForExit();

        var (a, b, c) = (Step.Median(ours), Step.Median(pythonSteps), Step.Median(scriptSteps));
        Console.WriteLine($"{architecture,-13} {batch,5} {size,4} {a.Total,7:F3} {b.Total,7:F3} {c.Total,7:F3} " +
            $"{a.Total / b.Total,10:F2} {a.Total / c.Total,10:F2} {c.Total / b.Total,11:F2}");
        breakdowns.Add($"{architecture,-13} ours  {a}");
        breakdowns.Add($"{"",-13} tv-py {b}");
        breakdowns.Add($"{"",-13} tv-ts {c}");
    }
}
finally
{
    scriptDirectory.Delete(recursive: true);
}
Console.WriteLine();
Console.WriteLine("breakdown (median seconds): forward+loss / backward / Adam");
foreach (var line in breakdowns)
    Console.WriteLine(line);

static Step Measure(Func<Tensor> forwardAndLoss, optim.Optimizer optimizer)
{
    using var scope = NewDisposeScope();
    var stopwatch = Stopwatch.StartNew();
    var loss = forwardAndLoss();
    var forward = stopwatch.Elapsed.TotalSeconds;
    optimizer.zero_grad();
    loss.backward();
    var backward = stopwatch.Elapsed.TotalSeconds;
    optimizer.step();
    var total = stopwatch.Elapsed.TotalSeconds;
    return new Step(total, forward, backward - forward, total - backward);
}

// Same scoping as ClassifierLoss.ForwardLoss, so both legs free their activations the same way.
static Tensor ScriptedForwardLoss(jit.ScriptModule scripted, Tensor input, Tensor targets)
{
    using var scope = NewDisposeScope();
    return ClassifierLoss.Compute(ScriptOutput(scripted.call(input)), targets).MoveToOuterDisposeScope();
}

// A scripted torchvision model returns a tensor, or for inception_v3 in training mode InceptionOutputs(logits, aux_logits),
// which TorchSharp hands back as a tuple.
static ModelOutput ScriptOutput(object output) => output switch
{
    Tensor logits => new ModelOutput(logits, null),
    ValueTuple<Tensor, Tensor> pair => new ModelOutput(pair.Item1, pair.Item2),
    _ => throw new InvalidOperationException($"unexpected TorchScript output {output.GetType()}"),
};

static Process StartTorchvision(string architecture, int batch, int size, int threads, string scriptPath, bool glibcDefaults)
{
    var start = new ProcessStartInfo("/usr/bin/python3")
    {
        RedirectStandardInput = true,
        RedirectStandardOutput = true,
    };
    foreach (var (name, value) in NativeAllocator.EnvironmentVariables)
    {
        if (glibcDefaults)
            start.Environment.Remove(name);
        else
            start.Environment[name] = value;
    }
    start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "torchvision_step.py"));
    foreach (var argument in new object[] { architecture, batch, size, threads, scriptPath })
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

/// <summary>Seconds of one training step and its parts.</summary>
internal readonly record struct Step(double Total, double Forward, double Backward, double Adam)
{
    public static Step Parse(string line)
    {
        var parts = line.Split(' ').Select(p => double.Parse(p, CultureInfo.InvariantCulture)).ToArray();
        return new Step(parts[0], parts[1], parts[2], parts[3]);
    }

    public static Step Median(IReadOnlyList<Step> steps) => new(
        MedianOf(steps.Select(s => s.Total)), MedianOf(steps.Select(s => s.Forward)),
        MedianOf(steps.Select(s => s.Backward)), MedianOf(steps.Select(s => s.Adam)));

    private static double MedianOf(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Total:F3} = {Forward:F3} / {Backward:F3} / {Adam:F3}");
}
