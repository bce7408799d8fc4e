using System.Globalization;

namespace Ifcb.Inference.Tests;

/// <summary>The .h5 (read back by h5py), .json and .csv result files of one bin run.</summary>
[Collection(ReferenceModelCollection.Name)]
public sealed class OutputFormatTests(ReferenceModelFixture fixture)
{
    private static readonly DateTimeOffset Timestamp = new(2024, 5, 6, 7, 8, 9, TimeSpan.Zero);

    [Fact]
    public void WritesEveryFormatWithNeustonsPatternsAndFields()
    {
        var outdir = fixture.NewFolder();
        var summary = new RunEngine(fixture.Plain).Run(new RunRequest(ReferenceModelFixture.WhiteBin, "formats")
        {
            OutputDirectory = Path.Combine(outdir, "{RUN_ID}", "v3", "{MODEL_ID}"),
            OutputFiles = [RunRequest.DefaultBinOutputFile, "{BIN_ID}.json", "csv/{BIN_ID}.csv"],
            Timestamp = Timestamp,
        });
        var result = Assert.Single(summary.Completed);
        var root = Path.Combine(outdir, "formats", "v3", "parity-plain");
        Assert.Equal(root, summary.OutputDirectory);
        var h5 = Path.Combine(root, "D2013", "D20130526", "D20130526T095207_IFCB013_class.h5");
        var json = Path.Combine(root, "D20130526T095207_IFCB013.json");
        var csv = Path.Combine(root, "csv", "D20130526T095207_IFCB013.csv");
        Assert.Equal([h5, json, csv], result.OutputFiles);

        var (scores, classes, document) = JsonResults.Read(json, images: false);
        Assert.Equal("v3", document["version"]!.GetValue<string>());
        Assert.Equal("parity-plain", document["model_id"]!.GetValue<string>());
        Assert.Equal("2024-05-06T07:08:09Z", document["timestamp"]!.GetValue<string>());
        Assert.Equal("D20130526T095207_IFCB013", document["bin_id"]!.GetValue<string>());
        Assert.Equal(ReferenceModelFixture.Classes, document["class_labels"]!.AsArray().Select(v => v!.GetValue<string>()));
        var roiNumbers = document["roi_numbers"]!.AsArray().Select(v => v!.GetValue<int>()).ToArray();
        Assert.Equal(19, roiNumbers.Length);
        Assert.Equal(roiNumbers.Order(), roiNumbers);
        foreach (var (id, row) in scores)
        {
            Assert.Equal(1.0, row.Sum(), 1e-5);
            Assert.Equal(Array.IndexOf(row, row.Max()), classes[id]);
        }

        var inspected = JsonResults.Parse(ReferenceModelFixture.RunPython("inspect-h5", h5));
        var metadata = inspected.GetProperty("metadata");
        // neuston writes h5py.Empty (null dataspace); PureHDF writes a data-less scalar. Only the attributes are read.
        Assert.Equal("scalar", metadata.GetProperty("space").GetString());
        var attributes = metadata.GetProperty("attrs");
        Assert.Equal("v3", attributes.GetProperty("version").GetString());
        Assert.Equal("parity-plain", attributes.GetProperty("model_id").GetString());
        Assert.Equal("2024-05-06T07:08:09Z", attributes.GetProperty("timestamp").GetString());
        Assert.Equal("D20130526T095207_IFCB013", attributes.GetProperty("bin_id").GetString());
        Assert.Equal("float32", inspected.GetProperty("output_scores").GetProperty("dtype").GetString());
        Assert.Equal([19, 2], inspected.GetProperty("output_scores").GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal("gzip", inspected.GetProperty("output_scores").GetProperty("compression").GetString());
        Assert.Equal("int32", inspected.GetProperty("output_classes").GetProperty("dtype").GetString());
        Assert.Equal("int32", inspected.GetProperty("roi_numbers").GetProperty("dtype").GetString());
        Assert.Equal(roiNumbers, inspected.GetProperty("roi_numbers").GetProperty("values").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(ReferenceModelFixture.Classes, inspected.GetProperty("class_labels").GetProperty("values").EnumerateArray().Select(e => e.GetString()));
        var h5Scores = inspected.GetProperty("output_scores").GetProperty("values").EnumerateArray()
            .Select(r => r.EnumerateArray().Select(e => e.GetSingle()).ToArray()).ToArray();
        var h5Classes = inspected.GetProperty("output_classes").GetProperty("values").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        for (var i = 0; i < roiNumbers.Length; i++)
        {
            var id = $"D20130526T095207_IFCB013_{roiNumbers[i]:00000}";
            Assert.Equal(scores[id], h5Scores[i]);
            Assert.Equal(classes[id], h5Classes[i]);
        }

        // Provenance comments come first (see ScienceOutputTests); without thresholds the thresholded class is the winner.
        var lines = File.ReadAllLines(csv).Where(l => !l.StartsWith('#')).ToArray();
        Assert.Equal("roi_id,class,score,class_thresholded,class_0,class_1", lines[0]);
        Assert.Equal(20, lines.Length);
        foreach (var line in lines.Skip(1))
        {
            var cells = line.Split(',');
            var row = scores[cells[0]];
            Assert.Equal(ReferenceModelFixture.Classes[classes[cells[0]]], cells[1]);
            Assert.Equal(row.Max(), float.Parse(cells[2], CultureInfo.InvariantCulture));
            Assert.Equal(cells[1], cells[3]);
            Assert.Equal(row, cells[4..].Select(c => float.Parse(c, CultureInfo.InvariantCulture)));
        }
    }

    [Fact]
    public void ImageRunsWriteOneFilePerFolderWithInputSubdirs()
    {
        var outdir = fixture.NewFolder();
        var summary = new RunEngine(fixture.Plain).Run(new RunRequest(ReferenceModelFixture.SampleFolder, "groups")
        {
            InputType = RunInputType.Image,
            OutputDirectory = outdir,
            OutputFiles = ["{INPUT_SUBDIRS}/img_results.json", "{INPUT_SUBDIRS}.h5"],
        });
        Assert.Equal(["Mesodinium_major", "Strombidium-like"], summary.Completed.Select(c => c.Id));
        Assert.Equal([14, 16], summary.Completed.Select(c => c.ImageCount));
        var (scores, _, _) = JsonResults.Read(Path.Combine(outdir, "Mesodinium_major", "img_results.json"), images: true);
        Assert.All(scores.Keys, k => Assert.DoesNotContain('/', k));
        var inspected = JsonResults.Parse(ReferenceModelFixture.RunPython("inspect-h5", Path.Combine(outdir, "Strombidium-like.h5")));
        Assert.Equal(16, inspected.GetProperty("input_images").GetProperty("values").GetArrayLength());
        Assert.False(inspected.GetProperty("metadata").GetProperty("attrs").TryGetProperty("bin_id", out _));
    }

    [Fact]
    public void RejectsUnknownPlaceholdersAndFormatsBeforeDoingAnyWork()
    {
        var engine = new RunEngine(fixture.Plain);
        var outdir = fixture.NewFolder();
        var unknown = Assert.Throws<ArgumentException>(() => engine.Run(new RunRequest(ReferenceModelFixture.WhiteBin, "x")
        {
            OutputDirectory = outdir,
            OutputFiles = ["{BIN_LID}.h5"],
        }));
        Assert.Contains("{BIN_LID}", unknown.Message, StringComparison.Ordinal);
        var mat = Assert.Throws<ArgumentException>(() => engine.Run(new RunRequest(ReferenceModelFixture.WhiteBin, "x")
        {
            OutputDirectory = outdir,
            OutputFiles = ["{BIN_ID}.mat"],
        }));
        Assert.Contains(".mat", mat.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => engine.Run(new RunRequest(ReferenceModelFixture.SampleFolder, "x")
        {
            InputType = RunInputType.Image,
            OutputDirectory = outdir,
            OutputFiles = ["{BIN_ID}.json"],
        }));
        Assert.Empty(Directory.EnumerateFileSystemEntries(outdir));
    }
}
