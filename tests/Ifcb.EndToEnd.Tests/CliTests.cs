using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using Aspire.Hosting.Testing;
using Ifcb.Testing;

namespace Ifcb.EndToEnd.Tests;

/// <summary>The ifcb CLI's server mode against the real platform: the built binary, run as a user or a CI job runs it.</summary>
[Collection(PlatformCollection.Name)]
public sealed class CliTests(PlatformFixture platform) : IDisposable
{
    private static readonly string Sample = Path.Combine(RepoPaths.Root, "testdata", "training-sample");
    private readonly string _temp = Directory.CreateTempSubdirectory("ifcb-cli-e2e-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private sealed record Result(int ExitCode, string Output, string Error);

    // Exit codes the CLI documents for scripts (tools/Ifcb.Cli/ExitCodes.cs).
    private const int Usage = 2, NotFound = 3, Auth = 4;

    /// <summary>The ifcb binary built next to this test's configuration (Debug or Release).</summary>
    private static string CliBinary
    {
        get
        {
            var configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
            return Path.Combine(RepoPaths.Root, "tools", "Ifcb.Cli", "bin", configuration, "net10.0", "linux-x64", "ifcb.dll");
        }
    }

    private Task<Result> IfcbAsync(bool withKey, params string[] args) => IfcbWithKeyAsync(withKey ? PlatformFixture.ApiKey : null, args);

    /// <summary>Runs ifcb with <paramref name="key"/> as IFCB_API_KEY (none when null).</summary>
    private async Task<Result> IfcbWithKeyAsync(string? key, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(CliBinary);
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        foreach (var inherited in new[] { "IFCB_SERVER", "IFCB_API_KEY" })
            start.Environment.Remove(inherited);
        start.Environment["IFCB_TRAINING_URL"] = platform.App.GetEndpoint("training", "grpc").ToString();
        start.Environment["IFCB_NORMSTATS_URL"] = platform.App.GetEndpoint("normstats", "grpc").ToString();
        start.Environment["IFCB_REGISTRY_URL"] = platform.App.GetEndpoint("registry", "grpc").ToString();
        if (key is not null)
            start.Environment["IFCB_API_KEY"] = key;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"ifcb {string.Join(' ', args)} did not finish in 5 minutes.");
        }
        return new Result(process.ExitCode, await output, await error);
    }

    private Task<Result> IfcbAsync(params string[] args) => IfcbAsync(withKey: true, args);

    [Fact]
    public async Task Train_with_progress_then_register_alias_and_download()
    {
        var outdir = Path.Combine(_temp, "out");
        var train = await IfcbAsync("train", Sample, "resnet18", "cli-e2e", "--untrain", "--resize", "32", "--batch", "8", "--emax", "2", "--emin", "1",
            "--seed", "3", "--dataset", "cli-sample", "--outdir", outdir);
        Assert.True(train.ExitCode == 0, train.Error + train.Output);
        Assert.Matches(@"epoch +\d.*\d+%", train.Output);                         // the per-epoch progress bars
        Assert.Contains("Best epoch", train.Output, StringComparison.Ordinal);    // the final metrics
        Assert.Contains("succeeded", train.Output, StringComparison.Ordinal);
        foreach (var file in new[] { "cli-e2e.ifcbmodel", "epochs.csv", "results.json", "loss_curves.png", "f1_curves.png", "confusion_matrix.png" })
            Assert.True(File.Exists(Path.Combine(outdir, file)), $"{file} was not downloaded");

        var jobs = await IfcbAsync("jobs", "list", "--json");
        Assert.Equal(0, jobs.ExitCode);
        using var jobList = JsonDocument.Parse(jobs.Output);
        var job = jobList.RootElement.EnumerateArray().First(j => j.GetProperty("request").GetProperty("train_id").GetString() == "cli-e2e");
        Assert.Equal("JOB_STATE_SUCCEEDED", job.GetProperty("state").GetString());
        var jobId = job.GetProperty("job_id").GetString()!;
        var artifacts = await IfcbAsync("jobs", "artifacts", jobId, "--out", Path.Combine(_temp, "artifacts"), "--only", "loss_curves.png");
        Assert.Equal(0, artifacts.ExitCode);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(Path.Combine(_temp, "artifacts", "loss_curves.png"))[..4]);

        // The CI path: upload the checkpoint with an idempotency key; repeating the call returns the same version.
        var checkpoint = Path.Combine(outdir, "cli-e2e.ifcbmodel");
        var register = await IfcbAsync("models", "register", checkpoint, "--name", "cli-ci", "--idempotency-key", "ci:cli-e2e", "--commit", "abc123",
            "--metric", "f1_weighted=0.5", "--json");
        Assert.True(register.ExitCode == 0, register.Error);
        using var registered = JsonDocument.Parse(register.Output);
        var version = registered.RootElement.GetProperty("version").GetInt32();
        Assert.Equal("VERSION_STATUS_READY", registered.RootElement.GetProperty("status").GetString());
        Assert.Equal("resnet18", registered.RootElement.GetProperty("metadata").GetProperty("arch").GetString());
        var again = await IfcbAsync("models", "register", checkpoint, "--name", "cli-ci", "--idempotency-key", "ci:cli-e2e", "--json");
        using (var repeated = JsonDocument.Parse(again.Output))
            Assert.Equal(version, repeated.RootElement.GetProperty("version").GetInt32());

        var alias = await IfcbAsync("models", "alias", "cli-ci", "production", version.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(alias.ExitCode == 0, alias.Error);
        var downloaded = Path.Combine(_temp, "prod.ifcbmodel");
        var download = await IfcbAsync("models", "download", "cli-ci@production", "-o", downloaded);
        Assert.True(download.ExitCode == 0, download.Error);
        Assert.Equal(SHA256.HashData(File.ReadAllBytes(checkpoint)), SHA256.HashData(File.ReadAllBytes(downloaded)));
        // The per-class thresholds training chose travel in the checkpoint, and the registry shows the same ones.
        Ifcb.Platform.Checkpoints.CheckpointHeader header;
        using (var file = File.OpenRead(downloaded))
            header = Ifcb.Platform.Checkpoints.CheckpointHeader.Read(file);
        var shown = (await new Ifcb.Protos.Registry.RegistryClient(platform.Channel("registry"))
            .GetVersionAsync(new Ifcb.Protos.VersionRef { Name = "cli-ci", Version = version })).Metadata.ClassThresholds;
        Assert.Equal(header.Classes.Zip(header.ClassThresholds ?? new double?[header.Classes.Length])
                .Where(p => p.Second is not null).ToDictionary(p => p.First, p => p.Second!.Value),
            shown.ToDictionary(kv => kv.Key, kv => kv.Value));

        // The registry exports the version to ONNX once and serves the cached blob the second time.
        var onnx = Path.Combine(_temp, "export", "model.onnx");
        var exported = await IfcbAsync("models", "export", "cli-ci@production", "--format", "onnx", "-o", onnx, "--json");
        Assert.True(exported.ExitCode == 0, exported.Error + exported.Output);
        using (var report = JsonDocument.Parse(exported.Output))
        {
            Assert.False(report.RootElement.GetProperty("cached").GetBoolean());
            Assert.Equal($"cli-ci/{version}", report.RootElement.GetProperty("version").GetString());
        }
        Assert.Equal(["Mesodinium_major", "Strombidium-like"], File.ReadAllLines(Path.Combine(_temp, "export", "classes.txt")));
        var first = File.ReadAllBytes(onnx);
        var exportedAgain = await IfcbAsync("models", "export", "cli-ci/" + version, "-o", onnx, "--json");
        Assert.True(exportedAgain.ExitCode == 0, exportedAgain.Error);
        using (var report = JsonDocument.Parse(exportedAgain.Output))
            Assert.True(report.RootElement.GetProperty("cached").GetBoolean());
        Assert.Equal(first, File.ReadAllBytes(onnx));
        // The ONNX checker (Debian's python3-onnx) accepts it, and the metadata names the registered version and its checkpoint.
        const string Checker = "import json, onnx, sys; m = onnx.load(sys.argv[1]); onnx.checker.check_model(m); " +
            "print(json.dumps({p.key: p.value for p in m.metadata_props}))";
        var check = Process.Start(new ProcessStartInfo("/usr/bin/python3", ["-c", Checker, onnx]) { RedirectStandardOutput = true })!;
        var metadataText = await check.StandardOutput.ReadToEndAsync();
        await check.WaitForExitAsync();
        Assert.Equal(0, check.ExitCode);
        using (var metadata = JsonDocument.Parse(metadataText))
        {
            Assert.Equal("cli-ci", metadata.RootElement.GetProperty("registry_name").GetString());
            Assert.Equal(version.ToString(System.Globalization.CultureInfo.InvariantCulture),
                metadata.RootElement.GetProperty("registry_version").GetString());
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(checkpoint))),
                metadata.RootElement.GetProperty("checkpoint_sha256").GetString());
        }

        // A platform evaluation on the uploaded dataset: a worker scores the version, the registry keeps the figures on it,
        // and a comparison on that dataset reuses them instead of evaluating again.
        var evaluated = await IfcbAsync("evaluate", "cli-ci@production", "cli-sample", "--remote", "--outdir", Path.Combine(_temp, "eval"),
            "--json");
        Assert.True(evaluated.ExitCode == 0, evaluated.Error + evaluated.Output);
        using (var report = JsonDocument.Parse(evaluated.Output))
            Assert.Equal(30, report.RootElement.GetProperty("images").GetInt32());
        Assert.True(File.Exists(Path.Combine(_temp, "eval", "confusion_matrix.png")));
        var registry = new Ifcb.Protos.Registry.RegistryClient(platform.Channel("registry"));
        var exact = new Ifcb.Protos.VersionRef { Name = "cli-ci", Version = version };
        Ifcb.Protos.ListEvaluationsReply kept;
        for (var attempt = 0; (kept = await registry.ListEvaluationsAsync(exact)).Evaluations.Count == 0 && attempt < 60; attempt++)
            await Task.Delay(500);
        var evaluation = Assert.Single(kept.Evaluations);
        Assert.Equal("cli-sample", evaluation.Dataset);
        Assert.Equal(30, evaluation.Images);
        var compared = await IfcbAsync("models", "compare", "cli-ci@production", "cli-ci/" + version, "--dataset", "cli-sample", "--remote",
            "--require-better", "f1_weighted");
        Assert.Equal(1, compared.ExitCode); // the same version is not strictly better than itself
        Assert.Contains("is not better than", compared.Output, StringComparison.Ordinal);
        Assert.Equal(2, compared.Error.Split("the registry's evaluation on cli-sample").Length - 1);

        // Fine-tuning the registered version on the sample with one class renamed: the worker starts from it (classes
        // mapped by name, the body frozen) and the new version records it as its parent.
        var renamed = Path.Combine(_temp, "renamed");
        foreach (var (from, to) in new[] { ("Mesodinium_major", "Mesodinium_major"), ("Strombidium-like", "Strombidium_renamed") })
        {
            Directory.CreateDirectory(Path.Combine(renamed, to));
            foreach (var file in Directory.EnumerateFiles(Path.Combine(Sample, from)))
                File.Copy(file, Path.Combine(renamed, to, Path.GetFileName(file)));
        }
        var tuned = await IfcbAsync("train", renamed, "resnet18", "cli-ft", "--from", "cli-ci@production", "--freeze", "features",
            "--resize", "32", "--batch", "8", "--emax", "1", "--emin", "1", "--seed", "4", "--dataset", "cli-renamed",
            "--register", "cli-ft", "--json");
        Assert.True(tuned.ExitCode == 0, tuned.Error + tuned.Output);
        Ifcb.Protos.ModelVersion? child = null;
        for (var attempt = 0; attempt < 120 && child is null; attempt++)
        {
            try
            {
                child = await registry.GetVersionAsync(new Ifcb.Protos.VersionRef { Name = "cli-ft" });
            }
            catch (Grpc.Core.RpcException e) when (e.StatusCode == Grpc.Core.StatusCode.NotFound)
            {
                await Task.Delay(500);
            }
        }
        Assert.NotNull(child);
        Assert.Equal($"cli-ci/{version}", child.Metadata.ParentVersion);
        Assert.Equal(["Mesodinium_major", "Strombidium_renamed"], child.Metadata.Classes);

        // Lineage the other way: the parent lists its child and the evaluation job that used it.
        Ifcb.Protos.Lineage lineage;
        for (var attempt = 0; (lineage = await registry.GetLineageAsync(exact)).Children.Count == 0 && attempt < 60; attempt++)
            await Task.Delay(500);
        Assert.Equal([$"cli-ft/{child.Version}"], lineage.Children);
        Assert.Contains(lineage.Uses, u => u.Kind == "evaluate");
        var lineageShown = await IfcbAsync("models", "show", $"cli-ci/{version}", "--lineage");
        Assert.True(lineageShown.ExitCode == 0, lineageShown.Error);
        Assert.Contains($"cli-ft/{child.Version}", lineageShown.Output, StringComparison.Ordinal);

        var history = await IfcbAsync("models", "history", "cli-ci", "--json");
        Assert.Contains("alias.set", history.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Models_compare_gates_on_platform_evaluations_with_exit_codes_0_and_1()
    {
        // Two registered versions whose winners do not depend on the images: version 1 always says Mesodinium_major (14 of
        // the 30 sample images: f1_weighted 14/30 · 28/44), version 2 always Strombidium-like (16 of 30: 16/30 · 32/46).
        var upload = await IfcbAsync("dataset", "upload", Sample, "--name", "gate-sample");
        Assert.True(upload.ExitCode == 0, upload.Error);
        foreach (var winner in new[] { 0, 1 })
        {
            var register = await IfcbAsync("models", "register", AlwaysSays(winner), "--name", "gate", "--json");
            Assert.True(register.ExitCode == 0, register.Error);
        }

        var better = await IfcbAsync("models", "compare", "gate/1", "gate/2", "--dataset", "gate-sample", "--remote",
            "--require-better", "f1_weighted", "--json");
        Assert.True(better.ExitCode == 0, better.Error + better.Output);
        using (var comparison = JsonDocument.Parse(better.Output))
        {
            Assert.Equal(14.0 / 30 * 28 / 44, comparison.RootElement.GetProperty("base").GetProperty("f1_weighted").GetDouble(), 9);
            Assert.Equal(16.0 / 30 * 32 / 46, comparison.RootElement.GetProperty("candidate").GetProperty("f1_weighted").GetDouble(), 9);
        }
        // The other way round: both evaluations are now the registry's records, and the gate closes.
        var worse = await IfcbAsync("models", "compare", "gate/2", "gate/1", "--dataset", "gate-sample", "--remote",
            "--require-better", "f1_weighted");
        Assert.Equal(1, worse.ExitCode);
        Assert.Equal(2, worse.Error.Split("the registry's evaluation on gate-sample").Length - 1);
    }

    /// <summary>A squeezenet1_1 checkpoint (the sample's two classes, 64 px) whose last bias makes every image class <paramref name="winner"/>.</summary>
    private string AlwaysSays(int winner)
    {
        TorchSharp.torch.manual_seed(3);
        using var model = Ifcb.Models.ModelZoo.Create("squeezenet1_1", 2, pretrainedLayout: false);
        using (TorchSharp.torch.no_grad())
        {
            var bias = model.named_parameters().Single(p => p.name == "classifier.1.bias").parameter;
            bias.copy_(TorchSharp.torch.tensor(winner == 0 ? new[] { 1000f, 0f } : [0f, 1000f]));
        }
        var hparams = new Ifcb.Models.Checkpoints.ModelHparams("squeezenet1_1", ["Mesodinium_major", "Strombidium-like"], 64, null,
            false, 3, $"always-{winner}", "gate", null, DateTimeOffset.UnixEpoch, "tests");
        var path = Path.Combine(_temp, $"always-{winner}.ifcbmodel");
        using var file = File.Create(path);
        Ifcb.Models.Checkpoints.Checkpoint.Save(file, hparams, model);
        return path;
    }

    [Fact]
    public async Task Named_keys_a_reader_cannot_write_a_writer_registers_under_its_name_and_a_revoked_key_is_refused_at_once()
    {
        // The bootstrap key (IFCB_API_KEY of the platform) is an admin: it creates the keys.
        var reader = await IfcbAsync("keys", "create", "e2e-reader", "--role", "reader");
        Assert.True(reader.ExitCode == 0, reader.Error);
        Assert.Contains("shown only now", reader.Error, StringComparison.Ordinal);
        var readerKey = reader.Output.Trim();
        Assert.StartsWith("ifcb_e2e-reader_", readerKey, StringComparison.Ordinal);
        var writer = await IfcbAsync("keys", "create", "e2e-writer", "--role", "writer", "--json");
        Assert.True(writer.ExitCode == 0, writer.Error);
        string writerKey;
        using (var created = JsonDocument.Parse(writer.Output))
        {
            writerKey = created.RootElement.GetProperty("key").GetString()!;
            Assert.Equal("bootstrap", created.RootElement.GetProperty("info").GetProperty("created_by").GetString());
        }
        var checkpoint = AlwaysSays(0);

        var readerWrite = await IfcbWithKeyAsync(readerKey, "models", "register", checkpoint, "--name", "keys-e2e");
        Assert.Equal(Auth, readerWrite.ExitCode);
        Assert.Contains("PermissionDenied", readerWrite.Error, StringComparison.Ordinal);
        Assert.Contains("'key:e2e-reader' is a reader key", readerWrite.Error, StringComparison.Ordinal);
        var readerRead = await IfcbWithKeyAsync(readerKey, "models", "list", "--json");
        Assert.True(readerRead.ExitCode == 0, readerRead.Error);
        var writerManages = await IfcbWithKeyAsync(writerKey, "keys", "list");
        Assert.Equal(Auth, writerManages.ExitCode);

        var registered = await IfcbWithKeyAsync(writerKey, "models", "register", checkpoint, "--name", "keys-e2e", "--json");
        Assert.True(registered.ExitCode == 0, registered.Error);
        using (var version = JsonDocument.Parse(registered.Output))
            Assert.Equal("key:e2e-writer", version.RootElement.GetProperty("created_by").GetString());
        var history = await IfcbAsync("models", "history", "keys-e2e", "--json");
        using (var entries = JsonDocument.Parse(history.Output))
        {
            var registration = entries.RootElement.EnumerateArray().Single(e => e.GetProperty("action").GetString() == "version.registered");
            Assert.Equal("key:e2e-writer", registration.GetProperty("actor").GetString());
        }

        var revoke = await IfcbAsync("keys", "revoke", "e2e-writer");
        Assert.True(revoke.ExitCode == 0, revoke.Error);
        var afterRevoke = await IfcbWithKeyAsync(writerKey, "models", "register", checkpoint, "--name", "keys-e2e");
        Assert.Equal(Auth, afterRevoke.ExitCode);
        Assert.Contains("'e2e-writer' was revoked", afterRevoke.Error, StringComparison.Ordinal);

        var list = await IfcbAsync("keys", "list", "--json");
        Assert.True(list.ExitCode == 0, list.Error);
        Assert.DoesNotContain(writerKey[^43..], list.Output, StringComparison.Ordinal);
        using var keys = JsonDocument.Parse(list.Output);
        var listed = keys.RootElement.EnumerateArray()
            .Where(k => k.GetProperty("name").GetString()!.StartsWith("e2e-", StringComparison.Ordinal))
            .Select(k => (k.GetProperty("name").GetString(), k.GetProperty("role").GetString(), k.GetProperty("revoked_by").GetString()))
            .ToList();
        Assert.Equal([("e2e-reader", "reader", ""), ("e2e-writer", "writer", "bootstrap")], listed);
    }

    [Fact]
    public async Task Errors_map_to_exit_codes_with_the_servers_message()
    {
        var missing = await IfcbAsync("models", "show", "no-such-model-cli");
        Assert.Equal(NotFound, missing.ExitCode);
        Assert.Contains("NotFound", missing.Error, StringComparison.Ordinal);

        var anonymous = await IfcbAsync(withKey: false, "dataset", "upload", Sample, "--name", "cli-anon");
        Assert.Equal(Auth, anonymous.ExitCode);
        Assert.Contains("IFCB_API_KEY", anonymous.Error, StringComparison.Ordinal);

        var badModel = await IfcbAsync("train", Sample, "resnet9000", "bad", "--untrain", "--dataset", "cli-bad");
        Assert.Equal(Usage, badModel.ExitCode);
        Assert.Contains("Unknown model", badModel.Error, StringComparison.Ordinal);

        var status = await IfcbAsync("status", "--json");
        Assert.Equal(0, status.ExitCode);
        using var services = JsonDocument.Parse(status.Output);
        Assert.Equal(3, services.RootElement.GetArrayLength());
        Assert.All(services.RootElement.EnumerateArray(), s => Assert.True(s.GetProperty("up").GetBoolean()));
    }

    [Fact]
    public async Task A_dataset_config_is_uploaded_as_its_merge_with_clashing_file_names_prefixed()
    {
        // Two datasets whose Mesodinium folders hold the same file names: the merge keeps both copies.
        var extra = Path.Combine(_temp, "extra");
        Directory.CreateDirectory(Path.Combine(extra, "Mesodinium_major"));
        var meso = Directory.GetFiles(Path.Combine(Sample, "Mesodinium_major")).Order(StringComparer.Ordinal).Take(2).ToList();
        foreach (var file in meso)
            File.Copy(file, Path.Combine(extra, "Mesodinium_major", Path.GetFileName(file)));
        var config = Path.Combine(_temp, "merged-cli.csv");
        File.WriteAllText(config, $",1:{Sample},2:{extra}\nMesodinium_major,ciliate,ciliate\nStrombidium-like,ciliate,0\n");

        var upload = await IfcbAsync("dataset", "upload", config, "--json");
        Assert.True(upload.ExitCode == 0, upload.Error);
        using var info = JsonDocument.Parse(upload.Output);
        Assert.Equal("merged-cli", info.RootElement.GetProperty("name").GetString());
        Assert.Equal("32", info.RootElement.GetProperty("images").ToString()); // proto JSON writes int64 as a string
        var ciliate = Assert.Single(info.RootElement.GetProperty("classes").EnumerateArray());
        Assert.Equal("ciliate", ciliate.GetProperty("name").GetString());
        Assert.Equal("32", ciliate.GetProperty("images").ToString());
    }

    [Fact]
    public async Task Sweep_trains_the_grid_to_a_leaderboard_registers_the_best_and_sweeps_show_it()
    {
        var run = await IfcbAsync("sweep", Sample, "--arch", "resnet18", "--lr", "1e-3,3e-4", "--resize", "32", "--batch", "8", "--untrain",
            "--emax", "1", "--emin", "1", "--seed", "3", "--dataset", "cli-sweep-sample", "--train-id", "cli-sweep", "--register-best",
            "cli-sweep-best", "--json");
        Assert.True(run.ExitCode == 0, run.Error + run.Output);
        using var done = JsonDocument.Parse(run.Output);
        var sweepId = done.RootElement.GetProperty("sweep_id").GetString()!;
        Assert.Equal("JOB_STATE_SUCCEEDED", done.RootElement.GetProperty("state").GetString());
        Assert.Equal("cli-sweep-best/1", done.RootElement.GetProperty("registered_version").GetString());
        var board = done.RootElement.GetProperty("leaderboard").EnumerateArray().ToList();
        Assert.Equal(2, board.Count);
        Assert.Equal(done.RootElement.GetProperty("best_job_id").GetString(), board[0].GetProperty("job_id").GetString());
        Assert.Equal(["0.001", "0.0003"], board.OrderBy(t => t.TryGetProperty("index", out var i) ? i.GetInt32() : 0)
            .Select(t => t.GetProperty("params").GetProperty("lr").GetString()));

        var show = await IfcbAsync("sweeps", "show", sweepId);
        Assert.True(show.ExitCode == 0, show.Error);
        Assert.Contains("2/2 trials ended", show.Output, StringComparison.Ordinal);
        Assert.Contains("registered as cli-sweep-best/1", show.Output, StringComparison.Ordinal);
        var list = await IfcbAsync("sweeps", "list", "--json");
        using (var listed = JsonDocument.Parse(list.Output))
            Assert.Contains(listed.RootElement.EnumerateArray(), s => s.GetProperty("sweep_id").GetString() == sweepId);
        var cancel = await IfcbAsync("sweeps", "cancel", sweepId);
        Assert.Contains("succeeded", cancel.Output, StringComparison.Ordinal); // an ended sweep is left as it was
        Assert.Equal(Usage, (await IfcbAsync("sweep", Sample, "--lr", "1e-3")).ExitCode); // no --arch
    }
}
