using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using Ifcb.Contracts;
using Ifcb.Inference.Outputs;
using Ifcb.Models;
using Ifcb.Models.Checkpoints;

namespace Ifcb.Inference.Tests;

/// <summary>
/// Provenance, thresholded labels and pyifcb's v4 CSV in RUN's result files, read back with h5py and pandas (Debian's)
/// and with our own readers. A tiny random resnet18 at 32×32 on the white bin (19 ROIs): seconds, not minutes.
/// </summary>
public sealed class ScienceOutputTests : IDisposable
{
    private static readonly string[] Classes = ["Mesodinium_major", "Strombidium,like", "detritus"];
    private static readonly DateTimeOffset Timestamp = new(2024, 5, 6, 7, 8, 9, TimeSpan.Zero);
    private const string WhiteLid = "D20130526T095207_IFCB013";

    private readonly string _folder = Directory.CreateTempSubdirectory("ifcb-science-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Every_format_names_the_registered_version_its_alias_and_sha256()
    {
        float[] scores = [0.7f, 0.2f, 0.1f, 0.3f, 0.6f, 0.1f, 0.5f, 0.1f, 0.4f, 0.2f, 0.2f, 0.6f];
        var thresholdsFile = Path.Combine(_folder, "thresholds.csv");
        File.WriteAllText(thresholdsFile, "# chosen by hand\nclass,threshold\nMesodinium_major,0.6\n\"Strombidium,like\",\ndetritus,0.65\n");
        var sha256 = new string('A', 64);
        var output = ClassificationOutput.ForBin("plankton-model", "2024-05-06T07:08:09Z", Classes,
            new ClassScores(4, 3, scores, [0, 1, 0, 2]), WhiteLid, [1, 2, 5, 100000]) with
        {
            Provenance = new RunProvenance("run-7", "9.9.9", ModelProvenance.FromRegistry(
                ModelRef.ToVersion("plankton", 3), ModelRef.Parse("plankton@production"), sha256)),
            Thresholds = ClassThresholds.ReadCsv(thresholdsFile, Classes),
        };
        // Row 2's winner (0.5) is under Mesodinium_major's 0.6 and row 3's (0.6) under detritus' 0.65.
        int[] thresholded = [0, 1, -1, -1];
        var h5 = Path.Combine(_folder, "r.h5");
        var json = Path.Combine(_folder, "r.json");
        var csv = Path.Combine(_folder, "r.csv");
        foreach (var path in new[] { h5, json, csv })
            ResultFile.Write(path, output);

        var expected = new Dictionary<string, object>
        {
            ["run_id"] = "run-7", ["platform_version"] = "9.9.9", ["model_source"] = "registry", ["model_name"] = "plankton",
            ["model_version"] = 3, ["model_alias"] = "production", ["model_reference"] = "plankton@production",
            ["checkpoint_sha256"] = new string('a', 64), ["class_thresholds_source"] = "file:thresholds.csv",
        };

        var inspected = ReadH5(h5);
        var attributes = inspected.GetProperty("attrs");
        foreach (var (name, value) in expected)
        {
            if (value is int number)
            {
                Assert.Equal(number, attributes.GetProperty(name).GetInt32());
                Assert.Equal("int", inspected.GetProperty("attr_types").GetProperty(name).GetString());
            }
            else
                Assert.Equal(value, attributes.GetProperty(name).GetString());
        }
        Assert.False(attributes.TryGetProperty("checkpoint_file", out _));
        Assert.Equal(thresholded, Ints(inspected.GetProperty("output_classes_thresholded")));
        Assert.Equal("int32", inspected.GetProperty("thresholded_dtype").GetString());
        Assert.Equal([0.6, null, 0.65], Thresholds(inspected.GetProperty("class_thresholds")));

        using var document = JsonDocument.Parse(File.ReadAllBytes(json));
        var root = document.RootElement;
        foreach (var (name, value) in expected)
        {
            if (value is int number)
                Assert.Equal(number, root.GetProperty(name).GetInt32());
            else
                Assert.Equal(value, root.GetProperty(name).GetString());
        }
        Assert.Equal(thresholded, Ints(root.GetProperty("output_classes_thresholded")));
        Assert.Equal([0.6, null, 0.65], Thresholds(root.GetProperty("class_thresholds")));

        var lines = File.ReadAllLines(csv);
        var comments = lines.TakeWhile(l => l.StartsWith('#')).ToList();
        Assert.Equal(expected.Select(kv => $"# {kv.Key}: {Convert.ToString(kv.Value, CultureInfo.InvariantCulture)}"), comments);
        Assert.Equal("roi_id,class,score,class_thresholded,Mesodinium_major,\"Strombidium,like\",detritus", lines[comments.Count]);
        Assert.Equal(["Mesodinium_major", "\"Strombidium,like\"", "unclassified", "unclassified"],
            lines.Skip(comments.Count + 1).Select(l => Regex.Match(l, "^[^,]*,(\"[^\"]*\"|[^,]*),[^,]*,(\"[^\"]*\"|[^,]*)").Groups[2].Value));
        // A later run without --clobber counts the thresholded classes from any of the three.
        foreach (var path in new[] { h5, json, csv })
        {
            var labels = ResultWinners.ReadLabels(path, Classes);
            Assert.Equal([0, 1, 0, 2], labels.Winners);
            Assert.Equal(thresholded, labels.Thresholded);
        }
    }

    [Fact]
    public void A_run_from_a_file_names_its_sha256_and_applies_the_checkpoints_thresholds_or_a_csvs()
    {
        // Thresholds of 1 for every class: each ROI is unclassified unless its winner's score is exactly 1.
        var checkpoint = SaveTinyCheckpoint([1.0, 1.0, 1.0]);
        using var loaded = LoadCheckpoint(checkpoint);
        var engine = new RunEngine(loaded);
        var summary = engine.Run(new RunRequest(ReferenceModelFixture.WhiteBin, "science")
        {
            OutputDirectory = Path.Combine(_folder, "{RUN_ID}"),
            OutputFiles = ["{BIN_ID}.h5", "{BIN_ID}.json"],
            ModelProvenance = ModelProvenance.FromFile(checkpoint),
            Timestamp = Timestamp,
        });
        var files = Assert.Single(summary.Completed).OutputFiles;

        var fileSha256 = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(checkpoint)));
        var attributes = ReadH5(files[0]).GetProperty("attrs");
        Assert.Equal("file", attributes.GetProperty("model_source").GetString());
        Assert.Equal("tiny.ifcbmodel", attributes.GetProperty("checkpoint_file").GetString());
        Assert.Equal(fileSha256, attributes.GetProperty("checkpoint_sha256").GetString());
        Assert.Equal("tiny", attributes.GetProperty("model_id").GetString());
        Assert.Equal("science", attributes.GetProperty("run_id").GetString());
        Assert.Equal(RunProvenance.CurrentPlatformVersion, attributes.GetProperty("platform_version").GetString());
        Assert.Equal("checkpoint", attributes.GetProperty("class_thresholds_source").GetString());
        Assert.False(attributes.TryGetProperty("model_name", out _));

        var (scores, winners, thresholded) = ReadJson(files[1]);
        Assert.Equal(19, winners.Length);
        Assert.Equal(Expected(scores, winners, [1.0, 1.0, 1.0]), thresholded);
        Assert.Contains(-1, thresholded);

        // --thresholds replaces the checkpoint's: 0 keeps every winner, an empty cell and an unlisted class have none.
        var overrides = Path.Combine(_folder, "override.csv");
        File.WriteAllText(overrides, "class,threshold\nMesodinium_major,\n\"Strombidium,like\",0\n");
        var again = engine.Run(new RunRequest(ReferenceModelFixture.WhiteBin, "science")
        {
            OutputDirectory = Path.Combine(_folder, "{RUN_ID}"),
            OutputFiles = ["{BIN_ID}.json"],
            Thresholds = ClassThresholds.ReadCsv(overrides, Classes),
            Clobber = true,
        });
        var (_, sameWinners, kept) = ReadJson(Assert.Single(Assert.Single(again.Completed).OutputFiles));
        Assert.Equal(winners, sameWinners);
        Assert.Equal(winners, kept);
    }

    [Fact]
    public void The_v4_csv_reads_back_as_pyifcb_reads_it()
    {
        var checkpoint = SaveTinyCheckpoint(null);
        using var loaded = LoadCheckpoint(checkpoint);
        var summary = new RunEngine(loaded).Run(new RunRequest(ReferenceModelFixture.WhiteBin, "v4run")
        {
            OutputDirectory = Path.Combine(_folder, "{RUN_ID}", "v4", "{MODEL_ID}"),
            OutputFiles = [RunRequest.DefaultV4BinOutputFile, "{BIN_ID}.json"],
            OutfileFormat = OutfileFormat.V4,
            Timestamp = Timestamp,
        });
        var files = Assert.Single(summary.Completed).OutputFiles;
        Assert.EndsWith(Path.Combine("v4run", "v4", "tiny", "D2013", "D20130526", WhiteLid + ".csv"), files[0],
            StringComparison.Ordinal);
        using var document = JsonDocument.Parse(File.ReadAllBytes(files[1]));
        var roiNumbers = Ints(document.RootElement.GetProperty("roi_numbers"));
        var (scores, winners, _) = ReadJson(files[1]);

        // Our reader of pyifcb's format: header pid + the class labels; pid = {BIN_ID}_{ROI:00000}; nothing else.
        var lines = File.ReadAllLines(files[0]);
        Assert.Equal("pid,Mesodinium_major,\"Strombidium,like\",detritus", lines[0]);
        Assert.Equal(20, lines.Length);
        for (var i = 0; i < roiNumbers.Length; i++)
        {
            var cells = Regex.Split(lines[i + 1], ",");
            Assert.Equal($"{WhiteLid}_{roiNumbers[i]:00000}", cells[0]);
            Assert.Equal(roiNumbers[i], int.Parse(Regex.Match(cells[0], @"_(\d+)$").Groups[1].Value, CultureInfo.InvariantCulture));
            Assert.Equal(scores[i], cells[1..].Select(c => float.Parse(c, CultureInfo.InvariantCulture)));
        }

        // pandas, with the steps of pyifcb's ClassScoresFile._class_scores_v4.
        var pyifcb = JsonDocument.Parse(RunPython("pyifcb-v4", files[0])).RootElement;
        Assert.Equal(roiNumbers, Ints(pyifcb.GetProperty("roi_numbers")));
        Assert.Equal(Classes, pyifcb.GetProperty("class_labels").EnumerateArray().Select(e => e.GetString()));
        var pandasScores = pyifcb.GetProperty("scores").EnumerateArray().Select(r => r.EnumerateArray().Select(e => e.GetDouble()).ToArray())
            .ToArray();
        Assert.Equal(scores.Length, pandasScores.Length);
        for (var i = 0; i < scores.Length; i++)
            Assert.All(scores[i].Zip(pandasScores[i]), pair => Assert.Equal(pair.First, pair.Second, 1e-7));

        // A later run without --clobber summarises the bin from the v4 file alone.
        Assert.Equal(winners, ResultWinners.Read(files[0], Classes));
        Assert.Throws<ArgumentException>(() => new RunEngine(loaded).Run(new RunRequest(ReferenceModelFixture.SampleFolder, "x")
        {
            InputType = RunInputType.Image,
            OutputDirectory = _folder,
            OutfileFormat = OutfileFormat.V4,
        }));
    }

    [Theory]
    [InlineData("class,threshold\nnope,0.5\n", "not one of the model's classes")]
    [InlineData("class,threshold\ndetritus,0.5\ndetritus,0.4\n", "listed twice")]
    [InlineData("class,threshold\ndetritus,1.5\n", "not a score from 0 to 1")]
    [InlineData("class,thresh\ndetritus,0.5\n", "header must be class,threshold")]
    [InlineData("# only a comment\n", "no class,threshold header")]
    public void A_thresholds_csv_that_does_not_fit_the_model_is_refused(string content, string message)
    {
        var path = Path.Combine(_folder, "bad.csv");
        File.WriteAllText(path, content);
        var error = Assert.Throws<InvalidDataException>(() => ClassThresholds.ReadCsv(path, Classes));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_registered_version_given_by_number_has_no_alias()
    {
        var provenance = ModelProvenance.FromRegistry(ModelRef.ToVersion("plankton", 7), ModelRef.Parse("plankton/7"), "ab");
        var fields = new RunProvenance("r", "v", provenance).Fields().ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal(7, fields["model_version"]);
        Assert.Equal("plankton/7", fields["model_reference"]);
        Assert.False(fields.ContainsKey("model_alias"));
        Assert.Throws<ArgumentException>(() =>
            ModelProvenance.FromRegistry(ModelRef.Parse("plankton@production"), ModelRef.Parse("plankton@production"), "ab"));
    }

    private string SaveTinyCheckpoint(IReadOnlyList<double?>? thresholds)
    {
        using var model = ModelZoo.Create("resnet18", Classes.Length, pretrainedLayout: false);
        var hparams = new ModelHparams("resnet18", Classes, 32, null, false, 1, "tiny", "tiny", null, Timestamp, "test")
        {
            ClassThresholds = thresholds,
        };
        var path = Path.Combine(_folder, "tiny.ifcbmodel");
        using var file = File.Create(path);
        Checkpoint.Save(file, hparams, model);
        return path;
    }

    private static LoadedCheckpointScope LoadCheckpoint(string path)
    {
        using var file = File.OpenRead(path);
        return new LoadedCheckpointScope(Checkpoint.Load(file));
    }

    private static int[] Expected(float[][] scores, int[] winners, double?[] thresholds) =>
        [.. winners.Select((w, i) => thresholds[w] is { } t && scores[i][w] < t ? -1 : w)];

    private static (float[][] Scores, int[] Winners, int[] Thresholded) ReadJson(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = document.RootElement;
        return ([.. root.GetProperty("output_scores").EnumerateArray().Select(r => r.EnumerateArray().Select(e => e.GetSingle()).ToArray())],
            Ints(root.GetProperty("output_classes")), Ints(root.GetProperty("output_classes_thresholded")));
    }

    private static int[] Ints(JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetInt32())];

    private static double?[] Thresholds(JsonElement array) =>
        [.. array.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Null ? (double?)null : e.GetDouble())];

    private static JsonElement ReadH5(string path) => JsonDocument.Parse(RunPython("h5", path)).RootElement;

    private static string RunPython(params string[] arguments)
    {
        var start = new ProcessStartInfo(ReferenceModelFixture.Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "python", "science_outputs.py"));
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0,
            $"science_outputs.py {string.Join(' ', arguments)} (needs python3-h5py and python3-pandas) failed: {stderr.Result}");
        return stdout;
    }

    /// <summary>A loaded checkpoint whose model is disposed with the scope.</summary>
    private sealed class LoadedCheckpointScope(LoadedCheckpoint checkpoint) : IDisposable
    {
        public LoadedCheckpoint Checkpoint { get; } = checkpoint;

        public void Dispose() => Checkpoint.Model.Dispose();

        public static implicit operator LoadedCheckpoint(LoadedCheckpointScope scope) => scope.Checkpoint;
    }
}
