using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Ifcb.Training.Engine.Tests;

/// <summary>Runs python/optim_reference.py with Debian's python3-torch: PyTorch's own answer to one request.</summary>
internal static class PyTorchReference
{
    private const string Python = "/usr/bin/python3";

    private static string Script => Path.Combine(AppContext.BaseDirectory, "python", "optim_reference.py");

    public static JsonElement Ask(JsonObject request)
    {
        var start = new ProcessStartInfo(Python)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        start.ArgumentList.Add(Script);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {Python}");
        process.StandardInput.Write(request.ToJsonString());
        process.StandardInput.Close();
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0,
            $"{Script} (needs python3-torch and python3-sklearn; ./test.sh installs them) failed: {error.Result}");
        return JsonDocument.Parse(output).RootElement.Clone();
    }

    public static JsonArray Array<T>(IEnumerable<T> values) => [.. values.Select(v => JsonValue.Create(v))];
}
