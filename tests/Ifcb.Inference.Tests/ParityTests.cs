namespace Ifcb.Inference.Tests;

/// <summary>Our RUN against torchvision with neuston's transform, on the same weights and the same files.</summary>
[Collection(ReferenceModelCollection.Name)]
public sealed class ParityTests(ReferenceModelFixture fixture)
{
    [Fact]
    public void SamplePngsMatchTorchvisionWithin1e3()
    {
        var ours = RunImages(fixture.Plain, ReferenceModelFixture.SampleFolder);
        AssertMatches(fixture.Reference["samples"], ours, 1e-3);
    }

    [Fact]
    public void ImgNormIsAppliedToImagesAndMatchesTorchvision()
    {
        var ours = RunImages(fixture.Normalised, ReferenceModelFixture.SampleFolder);
        AssertMatches(fixture.Reference["samples_norm"], ours, 1e-3, bothClassesWin: false);
        // neuston forgets img_norm in --type img; with it the scores must differ clearly from the un-normalised ones.
        var plain = fixture.Reference["samples"];
        Assert.Contains(ours.Scores, kv => Math.Abs(kv.Value[0] - plain[kv.Key][0]) > 0.01);
    }

    [Fact]
    public void LosslessInputsMatchTorchvisionWithin1e4()
    {
        AssertMatches(fixture.Reference["lossless"], RunImages(fixture.Plain, fixture.LosslessFolder), 1e-4, bothClassesWin: false);
        AssertMatches(fixture.Reference["lossless_norm"], RunImages(fixture.Normalised, fixture.LosslessFolder), 1e-4, bothClassesWin: false);
    }

    [Fact]
    public void WhiteBinRoisMatchTorchvisionOnTheirLosslessPngs()
    {
        var outdir = fixture.NewFolder();
        var summary = new RunEngine(fixture.Plain).Run(new RunRequest(ReferenceModelFixture.WhiteBin, "parity")
        {
            OutputDirectory = outdir,
            OutputFiles = ["{BIN_ID}.json"],
        });
        var completed = Assert.Single(summary.Completed);
        Assert.Equal(19, completed.ImageCount);
        var ours = JsonResults.Read(completed.OutputFiles[0], images: false);
        var reference = fixture.Reference["rois"].ToDictionary(kv => Path.GetFileNameWithoutExtension(kv.Key), kv => kv.Value);
        AssertMatches(reference, ours, 1e-3);
    }

    private (Dictionary<string, float[]> Scores, Dictionary<string, int> Classes, System.Text.Json.Nodes.JsonObject Document) RunImages(
        Ifcb.Models.Checkpoints.LoadedCheckpoint checkpoint, string source)
    {
        var outdir = fixture.NewFolder();
        var summary = new RunEngine(checkpoint).Run(new RunRequest(source, "parity")
        {
            InputType = RunInputType.Image,
            OutputDirectory = outdir,
            BatchSize = 7,
        });
        Assert.Empty(summary.Failed);
        return JsonResults.Read(Assert.Single(summary.Completed).OutputFiles[0], images: true);
    }

    private static void AssertMatches(
        Dictionary<string, double[]> reference,
        (Dictionary<string, float[]> Scores, Dictionary<string, int> Classes, System.Text.Json.Nodes.JsonObject Document) ours,
        double tolerance,
        bool bothClassesWin = true)
    {
        Assert.Equal(reference.Keys.Order(StringComparer.Ordinal), ours.Scores.Keys.Order(StringComparer.Ordinal));
        var worst = 0.0;
        foreach (var (id, expected) in reference)
        {
            var actual = ours.Scores[id];
            for (var c = 0; c < expected.Length; c++)
                worst = Math.Max(worst, Math.Abs(expected[c] - actual[c]));
            var expectedWinner = expected[1] > expected[0] ? 1 : 0;
            Assert.True(expectedWinner == ours.Classes[id], $"{id}: torchvision picks {expectedWinner} ({expected[0]}, {expected[1]}), we pick {ours.Classes[id]}");
        }
        Assert.True(worst <= tolerance, $"largest score difference {worst:g3} exceeds {tolerance:g3}");
        // The reference head is centred on the un-normalised sample features, so there both classes must win somewhere,
        // or the class agreement above would prove little. (Normalised inputs shift the features; they check scores.)
        if (bothClassesWin)
            Assert.True(ours.Classes.Values.Distinct().Count() > 1, "every image got the same class");
    }
}
