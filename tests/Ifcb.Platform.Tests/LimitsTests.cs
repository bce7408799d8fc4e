namespace Ifcb.Platform.Tests;

public sealed class LimitsTests
{
    [Fact]
    public void The_batch_that_killed_the_training_worker_is_refused_naming_the_limit()
    {
        var error = Assert.Throws<IfcbException>(() => Limits.CheckBatch(28533, 224));

        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("batch is 28533", error.Message);
        Assert.Contains(nameof(Limits.MaxBatch), error.Message);
    }

    [Fact]
    public void A_batch_within_the_count_limit_but_too_large_for_its_resize_says_which_batch_fits()
    {
        var error = Assert.Throws<IfcbException>(() => Limits.CheckBatch(2000, 1024));

        Assert.Contains(nameof(Limits.MaxBatchTensorBytes), error.Message);
        Assert.Contains($"at most {Limits.MaxBatchTensorBytes / Limits.BatchTensorBytes(1, 1024)}", error.Message);
    }

    [Theory]
    [InlineData(108, 299)]
    [InlineData(1, 16)]
    [InlineData(1024, 224)]
    public void Neustons_batches_pass(int batch, int resize) => Limits.CheckBatch(batch, resize);

    [Fact]
    public void Batch_tensor_bytes_do_not_overflow_for_the_largest_values_an_int_can_hold() =>
        Assert.Equal(4L * 3 * int.MaxValue * 1024L * 1024, Limits.BatchTensorBytes(int.MaxValue, 1024));

    [Fact]
    public void Text_and_list_limits_name_the_field()
    {
        Assert.Contains("outfile has 300 items", Assert.Throws<IfcbException>(() =>
            Limits.CheckList(Enumerable.Repeat("x", 300).ToList(), "outfile")).Message);
        Assert.Contains("img_norm has 2000 characters", Assert.Throws<IfcbException>(() =>
            Limits.CheckText(new string('1', 2000), "img_norm")).Message);
    }
}
