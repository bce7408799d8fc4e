using System.Diagnostics;
using Ifcb.Models.Checkpoints;
using Ifcb.Platform;

namespace Ifcb.Inference.Tests;

[Collection(ReferenceModelCollection.Name)]
public sealed class ModelImportTests(ReferenceModelFixture fixture)
{
    [Fact]
    public void ClassCountMismatchIsAnArgumentErrorNamingBothCounts()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            ModelImport.FromStateDict(fixture.StateDictPath, new StateDictImportSpec("resnet18", ["a", "b", "c"])));
        Assert.Contains("fc.weight", e.Message, StringComparison.Ordinal);
        Assert.Contains("2 outputs", e.Message, StringComparison.Ordinal);
        Assert.Contains("3 class", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WrongArchitectureIsAnArgumentErrorListingTheDifferences()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            ModelImport.FromStateDict(fixture.StateDictPath, new StateDictImportSpec("resnet34", ReferenceModelFixture.Classes)));
        Assert.Contains("missing keys", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NeustonCheckpointImportsWithItsHparamsAndTheSameWeights()
    {
        var imported = ModelImport.FromNeustonCheckpoint(fixture.NeustonCheckpointPath);
        try
        {
            var h = imported.Hparams;
            Assert.Equal("resnet18", h.Architecture);
            Assert.Equal(ReferenceModelFixture.Classes, h.Classes);
            Assert.Equal(ReferenceModelFixture.Norm, h.ImgNorm);
            Assert.Equal(224, h.Resize);
            Assert.Equal("neuston-model", h.ModelId);
            Assert.Equal("train-42", h.TrainingId);
            Assert.Equal(1234, h.Seed);
            Assert.False(h.Pretrained);
            Assert.Equal("3", h.Extras!["epoch"]);
            AssertSameWeights(fixture.Plain.Model, imported.Model);

            // It saves as a platform checkpoint and loads back.
            using var stream = new MemoryStream();
            Checkpoint.Save(stream, h, imported.Model);
            stream.Position = 0;
            var reloaded = Checkpoint.Load(stream);
            Assert.Equal(h.Classes, reloaded.Hparams.Classes);
            reloaded.Model.Dispose();
        }
        finally
        {
            imported.Model.Dispose();
        }
    }

    [Fact]
    public void NeustonOverridesReplaceStoredHparams()
    {
        var imported = ModelImport.FromNeustonCheckpoint(fixture.NeustonCheckpointPath, new NeustonHparamsOverrides
        {
            Classes = ["Mesodinium", "Strombidium"],
            ModelId = "renamed",
        });
        Assert.Equal(["Mesodinium", "Strombidium"], imported.Hparams.Classes);
        Assert.Equal("renamed", imported.Hparams.ModelId);
        imported.Model.Dispose();
        Assert.Throws<ArgumentException>(() => ModelImport.FromNeustonCheckpoint(fixture.NeustonCheckpointPath,
            new NeustonHparamsOverrides { Classes = ["only-one"] }));
    }

    [Fact]
    public void UnreadableFilesAreInvalidData()
    {
        var junk = Path.Combine(fixture.NewFolder(), "junk.ptl");
        File.WriteAllText(junk, "not a checkpoint");
        var e = Assert.Throws<InvalidDataException>(() => ModelImport.FromNeustonCheckpoint(junk));
        Assert.Contains(junk, e.Message, StringComparison.Ordinal);
        // A bare state dict is not a neuston checkpoint: the message says what to use instead.
        var bare = Assert.Throws<InvalidDataException>(() => ModelImport.FromNeustonCheckpoint(fixture.StateDictPath));
        Assert.Contains("FromStateDict", bare.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("'classes': ['c%d' % i for i in range(20000)]", nameof(Limits.MaxClasses))]
    [InlineData("'classes': ['a', 'b'], 'resize': 10**12", nameof(Limits.MaxResize))]
    [InlineData("'classes': ['a', 'b\\x07bell']", "control characters")]
    public void NeustonHparamsOutOfBoundsAreRefusedBeforeAModelIsBuilt(string hparams, string expected)
    {
        var path = Path.Combine(fixture.NewFolder(), "hostile.ptl");
        Python($"torch.save({{'state_dict': {{'model.fc.weight': torch.zeros(2, 512)}}, 'hyper_parameters': {{'MODEL': 'resnet18', {hparams}}}}}, sys.argv[1])", path);
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<InvalidDataException>(() => ModelImport.FromNeustonCheckpoint(path));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
    }

    [Fact]
    public void AStateDictImportSpecOutOfBoundsIsRefusedBeforeAModelIsBuilt()
    {
        var classes = Enumerable.Range(0, 20_000).Select(i => $"c{i}").ToList();
        var error = Assert.Throws<ArgumentException>(() => ModelImport.FromStateDict(fixture.StateDictPath, new StateDictImportSpec("resnet18", classes)));
        Assert.Contains(nameof(Limits.MaxClasses), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ACheckpointThatWouldRunACommandInPythonImportsWithoutRunningIt()
    {
        // pickle.load would call os.system while loading 'callbacks'; the importer reads it as data and ignores it.
        var folder = fixture.NewFolder();
        var path = Path.Combine(folder, "exploit.ptl");
        var marker = Path.Combine(folder, "ran");
        Python($$$"""
            class Exploit:
                def __reduce__(self):
                    import os
                    return (os.system, ('touch {{{marker}}}',))
            weights = torch.load(sys.argv[2])
            torch.save({'state_dict': {'model.' + k: v for k, v in weights.items()}, 'callbacks': {'x': Exploit()},
                        'hyper_parameters': {'MODEL': 'resnet18', 'classes': ['a', 'b']}}, sys.argv[1])
            """, path, fixture.StateDictPath);
        Assert.False(File.Exists(marker));
        var imported = ModelImport.FromNeustonCheckpoint(path);
        imported.Model.Dispose();
        Assert.False(File.Exists(marker));
    }

    private static void Python(string script, params string[] arguments)
    {
        var start = new ProcessStartInfo(ReferenceModelFixture.Python) { RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("import sys, torch\n" + script);
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, stderr.Result);
    }

    private static void AssertSameWeights(Ifcb.Models.ClassifierNet expected, Ifcb.Models.ClassifierNet actual)
    {
        var a = expected.state_dict();
        var b = actual.state_dict();
        Assert.Equal(a.Keys.Order(StringComparer.Ordinal), b.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, tensor) in a)
            Assert.True(tensor.allclose(b[key], rtol: 0, atol: 0), key);
    }
}
