using Ifcb.Training.Engine.Jobs;

namespace Ifcb.Training.Engine.Tests;

public class TrainingOptionsTests
{
    private static TrainingOptions Valid => new() { Architecture = "resnet18", TrainId = "t1", Pretrained = false };

    [Theory]
    [InlineData("resnet9000", "Unknown model 'resnet9000'")]
    [InlineData("inception_v4", "no pretrained ImageNet weights")]
    public void Rejects_bad_architectures(string architecture, string message)
    {
        var options = Valid with { Architecture = architecture, Pretrained = true };
        var error = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Rejects_emin_above_emax() =>
        Assert.Contains("emin (20) is greater than emax (5)",
            Assert.Throws<ArgumentException>((Valid with { Emin = 20, Emax = 5 }).Validate).Message, StringComparison.Ordinal);

    [Theory]
    [InlineData("../x")]
    [InlineData("a/b")]
    [InlineData("")]
    public void Rejects_train_ids_that_are_not_names(string trainId) =>
        Assert.Throws<ArgumentException>((Valid with { TrainId = trainId }).Validate);

    [Fact]
    public void Rejects_nonpositive_batch_and_negative_estop()
    {
        Assert.Throws<ArgumentException>((Valid with { BatchSize = 0 }).Validate);
        Assert.Throws<ArgumentException>((Valid with { Estop = -1 }).Validate);
    }

    [Fact]
    public void Inception_models_default_to_299_and_others_to_224()
    {
        Assert.Equal(299, (Valid with { Architecture = "inception_v3" }).EffectiveResize);
        Assert.Equal(224, Valid.EffectiveResize);
        Assert.Equal(64, (Valid with { Resize = 64 }).EffectiveResize);
    }

    private static TrainingRequestSpec Request => new() { Dataset = "ds", Architecture = "resnet18", TrainId = "t1", Pretrained = false };

    /// <summary>What the Training service checks at submission (StartTraining → InvalidArgument with this message).</summary>
    [Theory]
    [InlineData(0.0, null, null, null, "lr is 0; it must be above 0 and at most 10")]
    [InlineData(20.0, null, null, null, "lr is 20")]
    [InlineData(null, -0.5, null, null, "weight-decay is -0.5; it must be between 0 and 1")]
    [InlineData(null, null, "lbfgs", null, "optimizer 'lbfgs' is not one of adam, adamw, sgd")]
    [InlineData(null, null, null, "step", "lr-schedule 'step' is not one of none, plateau, cosine")]
    public void A_submitted_job_with_bad_optimizer_options_is_refused(double? lr, double? decay, string? optimizer, string? schedule,
        string message)
    {
        var request = Request with { LearningRate = lr, WeightDecay = decay, Optimizer = optimizer, LrSchedule = schedule };
        Assert.Contains(message, Assert.Throws<ArgumentException>(() => request.Validate()).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_submitted_job_without_optimizer_options_trains_like_neuston()
    {
        var options = Request.Validate();
        Assert.Equal((OptimizerKind.Adam, 1e-3, 0.0, LrSchedule.None),
            (options.Optimizer, options.LearningRate, options.EffectiveWeightDecay, options.LrSchedule));
        options = (Request with { Optimizer = "AdamW", LearningRate = 3e-4, LrSchedule = "cosine" }).Validate();
        Assert.Equal((OptimizerKind.AdamW, 3e-4, 0.01, LrSchedule.Cosine),
            (options.Optimizer, options.LearningRate, options.EffectiveWeightDecay, options.LrSchedule));
    }

    [Theory]
    [InlineData("weighted", null, null, "class_weights 'weighted' is not one of none, balanced, file")]
    [InlineData("file", null, null, "class_weights 'file' needs class_weights_csv")]
    [InlineData("balanced", "a,1", null, "class_weights_csv is given but class_weights is 'balanced'")]
    [InlineData("file", "a,0", null, "the weight of 'a' is 0")]
    [InlineData("balanced", null, "balanced", "choose one")]
    [InlineData(null, null, "smote", "sampler 'smote' is not one of none, balanced")]
    public void A_submitted_job_with_bad_class_balancing_is_refused(string? weights, string? csv, string? sampler, string message)
    {
        var request = Request with { ClassWeights = weights, ClassWeightsCsv = csv, Sampler = sampler };
        Assert.Contains(message, Assert.Throws<ArgumentException>(() => request.Validate()).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_submitted_job_carries_its_class_balancing_to_the_engine()
    {
        Assert.Equal(ClassWeightMode.None, Request.Validate().ClassWeights.Mode);
        Assert.Equal(ClassWeightMode.Balanced, (Request with { ClassWeights = "balanced" }).Validate().ClassWeights.Mode);
        var file = (Request with { ClassWeights = "file", ClassWeightsCsv = "a,2\nb,3\n" }).Validate().ClassWeights;
        Assert.Equal(2, file.Table!["a"]);
        Assert.Equal(SamplerKind.Balanced, (Request with { Sampler = "balanced" }).Validate().Sampler);
    }
}
