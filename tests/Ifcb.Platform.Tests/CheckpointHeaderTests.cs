using System.IO.Compression;
using System.Text;
using Ifcb.Platform.Checkpoints;

namespace Ifcb.Platform.Tests;

public sealed class CheckpointHeaderTests
{
    private static MemoryStream Checkpoint(string hparamsJson, bool withWeights = true)
    {
        var buffer = new MemoryStream();
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
        {
            using (var entry = zip.CreateEntry(CheckpointHeader.HparamsEntry).Open())
                entry.Write(Encoding.UTF8.GetBytes(hparamsJson));
            if (withWeights)
                using (var weights = zip.CreateEntry(CheckpointHeader.WeightsEntry).Open())
                    weights.Write(new byte[1024]);
        }
        buffer.Position = 0;
        return buffer;
    }

    private const string Valid = """
        {"format_version":1,"arch":"resnet18","classes":["diatom","dino"],"resize":224,
         "img_norm":{"mean":[0.66],"std":[0.22]},"pretrained":false,"seed":7,"model_id":"m","training_id":"t",
         "dataset_fingerprint":null,"created":"2026-11-30T12:00:00+00:00","platform_version":"1.0","extras":{"best_epoch":"3"}}
        """;

    [Fact]
    public void Reads_the_hparams_a_checkpoint_was_saved_with()
    {
        var header = CheckpointHeader.Read(Checkpoint(Valid));

        Assert.Equal("resnet18", header.Arch);
        Assert.Equal(["diatom", "dino"], header.Classes);
        Assert.Equal(224, header.Resize);
        Assert.Equal([0.66], header.ImgNorm!.Mean);
        Assert.Equal("3", header.Extras!["best_epoch"]);
    }

    [Fact]
    public void Fifty_million_labels_are_refused_before_they_are_materialised()
    {
        // 50M one-character labels compress to a few hundred KB but would be gigabytes of strings.
        var labels = new StringBuilder("[");
        for (var i = 0; i < 50_000_000 / 10; i++)
            labels.Append("\"a\",");
        labels.Append("\"a\"]");
        var json = Valid.Replace("[\"diatom\",\"dino\"]", labels.ToString());

        var error = Assert.Throws<InvalidDataException>(() => CheckpointHeader.Read(Checkpoint(json)));

        Assert.Contains(nameof(Limits.MaxHparamsBytes), error.Message);
    }

    [Theory]
    [InlineData("\"resize\":224", "\"resize\":100000", "resize 100000")]
    [InlineData("\"resize\":224", "\"resize\":0", "resize 0")]
    [InlineData("\"std\":[0.22]", "\"std\":[0]", "std positive")]
    [InlineData("[\"diatom\",\"dino\"]", "[]", "class list")]
    [InlineData("\"format_version\":1", "\"format_version\":9", "format 9")]
    [InlineData("\"seed\":7", "\"seed\":7,\"class_thresholds\":[0.5]", "1 entries for 2 classes")]
    [InlineData("\"seed\":7", "\"seed\":7,\"class_thresholds\":[0.5,1.5]", "score from 0 to 1")]
    public void Out_of_bounds_fields_are_named(string field, string replacement, string expected)
    {
        var error = Assert.Throws<InvalidDataException>(() => CheckpointHeader.Read(Checkpoint(Valid.Replace(field, replacement))));

        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Class_thresholds_are_optional_and_null_means_none()
    {
        Assert.Null(CheckpointHeader.Read(Checkpoint(Valid)).ClassThresholds);
        var header = CheckpointHeader.Read(Checkpoint(Valid.Replace("\"seed\":7", "\"seed\":7,\"class_thresholds\":[0.625,null]")));
        Assert.Equal([0.625, null], header.ClassThresholds!);
        Assert.Equal([0.625, null], CheckpointHeader.Parse(header.ToJson()).ClassThresholds!);
    }

    [Fact]
    public void Not_a_checkpoint_says_what_is_expected()
    {
        Assert.Contains("Not a model checkpoint", Assert.Throws<InvalidDataException>(() =>
            CheckpointHeader.Read(new MemoryStream(Encoding.UTF8.GetBytes("hello")))).Message);
        Assert.Contains(CheckpointHeader.WeightsEntry, Assert.Throws<InvalidDataException>(() =>
            CheckpointHeader.Read(Checkpoint(Valid, withWeights: false))).Message);
    }

    [Fact]
    public void More_classes_than_the_limit_are_refused_with_the_limit_named()
    {
        var many = "[" + string.Join(',', Enumerable.Range(0, Limits.MaxClasses + 1).Select(i => $"\"c{i}\"")) + "]";

        var error = Assert.Throws<InvalidDataException>(() => CheckpointHeader.Read(Checkpoint(Valid.Replace("[\"diatom\",\"dino\"]", many))));

        Assert.Contains(nameof(Limits.MaxClasses), error.Message);
    }
}
