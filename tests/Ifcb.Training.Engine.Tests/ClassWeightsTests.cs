using System.Globalization;
using System.Text.Json.Nodes;
using Ifcb.Data.Datasets;
using Ifcb.Data.Imaging;
using Ifcb.Data.Loading;
using Ifcb.Models;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Ifcb.Training.Engine.Tests;

/// <summary>--class-weights and --sampler balanced: the weighted loss against PyTorch, the weights against scikit-learn.</summary>
public sealed class ClassWeightsTests(ITestOutputHelper output)
{
    private static readonly string[] FourClasses = ["a", "b", "c", "d"];

    private static List<LabelledImage> Images(params int[] counts) =>
        [.. counts.SelectMany((n, c) => Enumerable.Range(0, n).Select(i => new LabelledImage($"/x/{c}/{i}.png", c)))];

    [Fact]
    public void The_weighted_loss_equals_pytorchs_cross_entropy_with_weight()
    {
        const int rows = 23, batch = 8;
        var random = new Random(5);
        var logits = Enumerable.Range(0, rows).Select(_ => Enumerable.Range(0, 4).Select(_ => (float)(random.NextDouble() * 6 - 3)).ToArray())
            .ToArray();
        var targets = Enumerable.Range(0, rows).Select(i => (long)(i % 7 == 0 ? 3 : random.Next(3))).ToArray();
        var weights = ClassWeights.BalancedWeights(FourClasses, [.. Enumerable.Range(0, 4).Select(c => targets.Count(t => t == c))]);

        using var scope = NewDisposeScope();
        var logitTensor = tensor(logits.SelectMany(r => r).ToArray()).reshape(rows, 4);
        var targetTensor = tensor(targets);
        var weightTensor = tensor(weights.Select(w => (float)w).ToArray());
        var mean = ClassifierLoss.Compute(new ModelOutput(logitTensor, null), targetTensor, weightTensor).item<float>();
        var sum = nn.functional.cross_entropy(logitTensor, targetTensor, weightTensor, reduction: nn.Reduction.Sum).item<float>();
        var unweighted = ClassifierLoss.Compute(new ModelOutput(logitTensor, null), targetTensor).item<float>();
        // train_loss as we report it: the sum over batches of each batch's weighted mean.
        var batchMeans = Enumerable.Range(0, (rows + batch - 1) / batch).Select(b =>
        {
            var length = Math.Min(batch, rows - b * batch);
            return (double)ClassifierLoss.Compute(new ModelOutput(logitTensor.narrow(0, b * batch, length), null),
                targetTensor.narrow(0, b * batch, length), weightTensor).item<float>();
        }).ToList();

        var torch = PyTorchReference.Ask(new JsonObject
        {
            ["command"] = "loss", ["batch"] = batch,
            ["logits"] = new JsonArray([.. logits.Select(PyTorchReference.Array)]),
            ["targets"] = PyTorchReference.Array(targets), ["weight"] = PyTorchReference.Array(weights),
        });
        var expectedBatchSum = torch.GetProperty("batch_means").EnumerateArray().Sum(e => e.GetDouble());
        var differences = new[]
        {
            Math.Abs(torch.GetProperty("mean").GetDouble() - mean),
            Math.Abs(torch.GetProperty("sum").GetDouble() - sum),
            Math.Abs(torch.GetProperty("unweighted_mean").GetDouble() - unweighted),
            Math.Abs(expectedBatchSum - batchMeans.Sum()),
        };
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"|Δ| mean {differences[0]:E2}, sum {differences[1]:E2}, unweighted mean {differences[2]:E2}, " +
            $"sum of batch means {differences[3]:E2} (weighted mean {mean}, unweighted {unweighted})"));
        Assert.All(differences, d => Assert.True(d <= 1e-6, $"differs from PyTorch by {d}"));
        Assert.True(Math.Abs(mean - unweighted) > 1e-3, "the weights changed nothing");
    }

    [Fact]
    public void Balanced_weights_are_scikit_learns()
    {
        var training = Images(40, 7, 2, 1);
        var ours = ClassWeights.Balanced.Resolve(FourClasses, training)!;
        var sklearn = PyTorchReference.Ask(new JsonObject
        {
            ["command"] = "balanced", ["classes"] = 4, ["y"] = PyTorchReference.Array(training.Select(i => i.ClassIndex)),
        }).GetProperty("weights").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(sklearn, ours, (a, b) => Math.Abs(a - b) <= 1e-12 * a);
        Assert.Equal(50.0 / (4 * 40), ours[0], 15);
        Assert.Null(ClassWeights.None.Resolve(FourClasses, training));
    }

    [Fact]
    public void Balanced_weights_refuse_a_class_without_training_images() =>
        Assert.Contains("no training images for 'c'",
            Assert.Throws<ArgumentException>(() => ClassWeights.Balanced.Resolve(FourClasses, Images(3, 3, 0, 2))).Message,
            StringComparison.Ordinal);

    [Fact]
    public void A_weights_file_gives_each_class_its_weight_and_names_every_class_it_gets_wrong()
    {
        var file = ClassWeights.FromCsv("class,weight\r\nd,4\na, 1.5\n\nb,2\nc,1e-1\n");
        Assert.Equal([1.5, 2, 0.1, 4], file.Resolve(FourClasses, Images(1, 1, 1, 1))!);
        Assert.Equal("file", file.ToString());

        var unknown = Assert.Throws<ArgumentException>(() => ClassWeights.FromCsv("a,1\nb,1\nc,1\nd,1\nzz,2\n")
            .Resolve(FourClasses, Images(1, 1, 1, 1)));
        Assert.Contains("does not train: 'zz'", unknown.Message, StringComparison.Ordinal);
        var missing = Assert.Throws<ArgumentException>(() => ClassWeights.FromCsv("a,1\nc,1\n").Resolve(FourClasses, Images(1, 1, 1, 1)));
        Assert.Contains("no weight for 2 class(es): 'b', 'd'", missing.Message, StringComparison.Ordinal);

        Assert.Contains("listed twice", Assert.Throws<ArgumentException>(() => ClassWeights.FromCsv("a,1\na,2")).Message,
            StringComparison.Ordinal);
        Assert.Contains("line 2", Assert.Throws<ArgumentException>(() => ClassWeights.FromCsv("a,1\nb;2")).Message,
            StringComparison.Ordinal);
        foreach (var bad in new[] { "0", "-1", "NaN", "1e7" })
            Assert.Contains("must be above 0", Assert.Throws<ArgumentException>(() => ClassWeights.FromCsv($"a,{bad}")).Message,
                StringComparison.Ordinal);
        Assert.Contains("no 'class,weight' rows", Assert.Throws<ArgumentException>(() => ClassWeights.FromCsv("class,weight\n")).Message,
            StringComparison.Ordinal);
    }

    [Fact]
    public void The_service_checks_a_weights_file_against_the_classes_the_job_will_train()
    {
        var counts = new Dictionary<string, int> { ["a"] = 5, ["b"] = 1, ["c"] = 3, ["d"] = 1 };
        var options = new TrainingOptions { Architecture = "resnet18", TrainId = "t", Pretrained = false };
        Assert.Equal(["a", "c"], TrainingPreparation.TrainedClasses(counts, options)); // class-min 2 drops b and d

        // b merges into a, c is skipped, d stays alone (too few images).
        var config = ClassConfig.Parse("class,cfg\na,1\nb,a\nc,0\nd,1\n", "cfg");
        var configured = options with { ClassConfig = config, ClassMin = 1 };
        Assert.Equal(["a", "d"], TrainingPreparation.TrainedClasses(counts, configured));
        ClassWeights.FromCsv("a,1\nd,9\n").CheckClasses(TrainingPreparation.TrainedClasses(counts, configured));
        var error = Assert.Throws<ArgumentException>(() =>
            ClassWeights.FromCsv("a,1\nb,2\n").CheckClasses(TrainingPreparation.TrainedClasses(counts, configured)));
        Assert.Contains("does not train: 'b'", error.Message, StringComparison.Ordinal);
        Assert.Contains("no weight for 1 class(es): 'd'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Class_weights_and_a_balanced_sampler_are_alternatives()
    {
        var options = new TrainingOptions
        {
            Architecture = "resnet18", TrainId = "t", Pretrained = false, ClassWeights = ClassWeights.Balanced,
            Sampler = SamplerKind.Balanced,
        };
        Assert.Contains("choose one", Assert.Throws<ArgumentException>(options.Validate).Message, StringComparison.Ordinal);
        Assert.Equal(SamplerKind.Balanced, ClassWeights.ParseSampler("Balanced"));
        Assert.Throws<ArgumentException>(() => ClassWeights.ParseSampler("oversample"));
    }

    [Fact]
    public void The_balanced_sampler_draws_classes_equally_and_repeats_per_seed_and_epoch()
    {
        var images = Images(900, 90, 9, 1); // a long tail: 1000 images, one class with a single image
        LoaderOptions Options(int seed) => new(new PreprocessOptions(16), BatchSize: 10, Shuffle: true, Seed: seed, Training: true,
            SampleWeights: ClassWeights.BalancedSampleWeights(4, images));
        var loader = new BatchLoader(images, LocalFileImageSource.Instance, Options(7));

        var epoch0 = loader.EpochOrder(0);
        Assert.Equal(images.Count, epoch0.Length);
        Assert.Equal(epoch0, new BatchLoader(images, LocalFileImageSource.Instance, Options(7)).EpochOrder(0));
        Assert.NotEqual(epoch0, loader.EpochOrder(1));
        Assert.NotEqual(epoch0, new BatchLoader(images, LocalFileImageSource.Instance, Options(8)).EpochOrder(0));
        var perClass = ClassWeights.CountPerClass(4, epoch0.Select(i => images[i]));
        output.WriteLine($"draws per class in epoch 0: {string.Join(", ", perClass)}");
        Assert.All(perClass, n => Assert.InRange(n, 200, 300)); // 250 expected each (binomial sd ≈ 14)
    }
}
