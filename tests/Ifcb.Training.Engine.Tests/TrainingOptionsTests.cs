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
}
