using System.Globalization;
using System.Text.Json.Nodes;
using TorchSharp.Modules;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Ifcb.Training.Engine.Tests;

/// <summary>
/// The optimisers and schedules <see cref="Optimization"/> builds from TorchSharp, step by step against Debian's
/// PyTorch (python/optim_reference.py) on the same parameters and gradients.
/// </summary>
public sealed class OptimizerParityTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-6;
    private static readonly long[][] Shapes = [[3, 4], [5]];

    /// <summary>(optimizer, --weight-decay) pairs; null is the optimiser's default (0.01 for adamw, 0 otherwise).</summary>
    private static readonly (string Name, double? WeightDecay)[] Configurations =
        [("adam", null), ("adam", 0.05), ("adamw", null), ("adamw", 0.05), ("sgd", null), ("sgd", 0.05)];

    [Fact]
    public void Three_steps_of_each_optimizer_match_pytorch()
    {
        const double lr = 0.01;
        var random = new Random(11);
        var runs = new JsonArray();
        var ours = new List<List<float[][]>>();
        foreach (var (name, weightDecay) in Configurations)
        {
            var initial = Shapes.Select(s => Values(random, s)).ToArray();
            var gradients = Enumerable.Range(0, 3).Select(_ => Shapes.Select(s => Values(random, s)).ToArray()).ToArray();
            var kind = Optimization.ParseOptimizer(name);
            var decay = Optimization.EffectiveWeightDecay(kind, weightDecay);
            ours.Add(Steps(kind, lr, decay, initial, gradients));
            runs.Add(new JsonObject
            {
                ["name"] = name, ["lr"] = lr, ["weight_decay"] = decay,
                ["params"] = new JsonArray([.. initial.Select(PyTorchReference.Array)]),
                ["shapes"] = new JsonArray([.. Shapes.Select(PyTorchReference.Array)]),
                ["grads"] = new JsonArray([.. gradients.Select(s => new JsonArray([.. s.Select(PyTorchReference.Array)]))]),
            });
            // The steps moved the parameters: a no-op optimiser would not pass by accident.
            Assert.True(Math.Abs(ours[^1][^1][0][0] - initial[0][0]) > 1e-4);
        }

        var reference = PyTorchReference.Ask(new JsonObject { ["command"] = "optimizers", ["runs"] = runs }).GetProperty("params");
        for (var run = 0; run < Configurations.Length; run++)
        {
            var worst = 0.0;
            for (var step = 0; step < 3; step++)
                for (var p = 0; p < Shapes.Length; p++)
                {
                    var expected = reference[run][step][p].EnumerateArray().Select(e => e.GetDouble()).ToArray();
                    for (var i = 0; i < expected.Length; i++)
                        worst = Math.Max(worst, Math.Abs(expected[i] - ours[run][step][p][i]));
                }
            var (name, _) = Configurations[run];
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{name} weight_decay {runs[run]!["weight_decay"]}: max |Δparam| over 3 steps = {worst:E2}"));
            Assert.True(worst <= Tolerance, $"{name}: parameters differ from PyTorch's by {worst}");
        }
    }

    /// <summary>Our optimiser's parameters after each step with the given gradients.</summary>
    private static List<float[][]> Steps(OptimizerKind kind, double lr, double decay, float[][] initial, float[][][] gradients)
    {
        var parameters = initial.Select((v, i) => new Parameter(tensor(v).reshape(Shapes[i]))).ToList();
        using var optimizer = Optimization.CreateOptimizer(kind, parameters, lr, decay);
        var after = new List<float[][]>();
        foreach (var step in gradients)
        {
            optimizer.zero_grad();
            using (NewDisposeScope())
            {
                // d/dp Σ p·g = g: the gradients arrive exactly as given.
                var loss = parameters.Select((p, i) => (p * tensor(step[i]).reshape(Shapes[i])).sum()).Aggregate((a, b) => a + b);
                loss.backward();
            }
            optimizer.step();
            after.Add([.. parameters.Select(p => p.detach().data<float>().ToArray())]);
        }
        parameters.ForEach(p => p.Dispose());
        return after;
    }

    public static TheoryData<string, double[]> Schedules => new()
    {
        { "cosine", [.. Enumerable.Range(0, 12).Select(e => 1.0 / (e + 1))] },
        // Improves, stalls 7 epochs (one reduction after the 6th bad epoch), improves, then stalls again.
        { "plateau", [1.0, 0.9, 0.95, 0.91, 0.92, 0.93, 0.94, 0.96, 0.97, 0.5, 0.51, 0.52, 0.53, 0.54, 0.55, 0.56, 0.57] },
    };

    [Theory]
    [MemberData(nameof(Schedules))]
    public void Schedules_match_pytorch_epoch_by_epoch(string name, double[] valLosses)
    {
        const double lr = 0.01;
        var ours = Rates(name, lr, valLosses);
        var reference = PyTorchReference.Ask(new JsonObject
        {
            ["command"] = "schedule", ["name"] = name, ["lr"] = lr, ["emax"] = valLosses.Length,
            ["patience"] = Optimization.PlateauPatience, ["factor"] = Optimization.PlateauFactor,
            ["val_losses"] = PyTorchReference.Array(valLosses),
        }).GetProperty("lrs").EnumerateArray().Select(e => e.GetDouble()).ToArray();

        Assert.Equal(reference.Length, ours.Count);
        var worst = reference.Zip(ours, (a, b) => Math.Abs(a - b)).Max();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name}: max |Δlr| over {ours.Count} epochs = {worst:E2}; ours {string.Join(" ", ours.Select(r => r.ToString("G4", CultureInfo.InvariantCulture)))}"));
        Assert.True(worst <= Tolerance * lr, $"{name}: learning rates differ from PyTorch's by {worst}");
        Assert.True(ours[^1] < lr / 5, $"{name} never lowered the rate");
    }

    [Theory]
    [MemberData(nameof(Schedules))]
    public void A_schedule_rebuilt_from_the_completed_epochs_continues_like_the_uninterrupted_one(string name, double[] valLosses)
    {
        const int stopAfter = 6; // the plateau schedule is then mid-way through its patience
        var uninterrupted = Rates(name, 0.01, valLosses);

        var state = Path.GetTempFileName();
        try
        {
            using (var first = new Parameter(zeros(2)))
            using (var optimizer = Optimization.CreateOptimizer(OptimizerKind.Sgd, [first], 0.01, 0))
            {
                var schedule = new EpochLrSchedule(Optimization.ParseSchedule(name), optimizer, valLosses.Length);
                foreach (var v in valLosses.Take(stopAfter))
                    schedule.Step(v);
                optimizer.save_state_dict(state);
            }

            using var parameter = new Parameter(zeros(2));
            using var resumedOptimizer = Optimization.CreateOptimizer(OptimizerKind.Sgd, [parameter], 0.01, 0);
            var resumed = new EpochLrSchedule(Optimization.ParseSchedule(name), resumedOptimizer, valLosses.Length);
            resumed.Replay(valLosses.Take(stopAfter));
            resumedOptimizer.load_state_dict(state);
            var rest = new List<double>();
            foreach (var v in valLosses.Skip(stopAfter))
            {
                rest.Add(resumed.LearningRate);
                resumed.Step(v);
            }
            Assert.Equal(uninterrupted.Skip(stopAfter), rest);
        }
        finally
        {
            File.Delete(state);
        }
    }

    /// <summary>The rate each epoch trains with, stepping after each epoch with its val_loss.</summary>
    private static List<double> Rates(string name, double lr, IEnumerable<double> valLosses)
    {
        using var parameter = new Parameter(zeros(2));
        using var optimizer = Optimization.CreateOptimizer(OptimizerKind.Sgd, [parameter], lr, 0);
        var losses = valLosses.ToList();
        var schedule = new EpochLrSchedule(Optimization.ParseSchedule(name), optimizer, losses.Count);
        var rates = new List<double>();
        foreach (var v in losses)
        {
            rates.Add(schedule.LearningRate);
            schedule.Step(v);
        }
        return rates;
    }

    private static float[] Values(Random random, long[] shape) =>
        [.. Enumerable.Range(0, (int)shape.Aggregate(1L, (a, b) => a * b)).Select(_ => (float)(random.NextDouble() * 2 - 1))];

    [Fact]
    public void Options_are_bounded_with_messages_that_name_the_flag()
    {
        var valid = new TrainingOptions { Architecture = "resnet18", TrainId = "t1", Pretrained = false };
        foreach (var lr in new[] { 0, -1e-3, 11, double.NaN, double.PositiveInfinity })
            Assert.Contains("lr is", Assert.Throws<ArgumentException>((valid with { LearningRate = lr }).Validate).Message,
                StringComparison.Ordinal);
        foreach (var decay in new[] { -0.1, 1.5, double.NaN })
            Assert.Contains("weight-decay is", Assert.Throws<ArgumentException>((valid with { WeightDecay = decay }).Validate).Message,
                StringComparison.Ordinal);
        Assert.Contains("adam, adamw, sgd", Assert.Throws<ArgumentException>(() => Optimization.ParseOptimizer("rmsprop")).Message,
            StringComparison.Ordinal);
        Assert.Contains("none, plateau, cosine", Assert.Throws<ArgumentException>(() => Optimization.ParseSchedule("step")).Message,
            StringComparison.Ordinal);
        Assert.Equal(0.01, (valid with { Optimizer = OptimizerKind.AdamW }).EffectiveWeightDecay);
        Assert.Equal(0, valid.EffectiveWeightDecay);
        Assert.Equal(1e-3, valid.LearningRate);
        Assert.Equal(OptimizerKind.Adam, valid.Optimizer);
    }
}
