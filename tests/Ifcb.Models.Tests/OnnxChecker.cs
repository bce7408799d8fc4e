using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Ifcb.Models.Tests;

/// <summary>
/// The official ONNX checker (<c>onnx.checker.check_model(full_check=True)</c> from Debian's python3-onnx, installed by
/// <c>build/prerequisites.sh --tests</c>), one Python process for the whole collection: python/check_onnx.py.
/// </summary>
public sealed class OnnxChecker : IDisposable
{
    private readonly Process _process;
    private readonly Task<string> _stderr;
    private readonly Lock _gate = new();

    public OnnxChecker()
    {
        var start = new ProcessStartInfo(TorchvisionReference.Python)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "python", "check_onnx.py"));
        _process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {TorchvisionReference.Python}");
        _stderr = _process.StandardError.ReadToEndAsync();
    }

    /// <summary>
    /// Checks the file in the checker's process, beside whatever the caller does next (it parses the whole file twice,
    /// seconds for a VGG); the answer says <c>ok</c> or carries the checker's <c>error</c>.
    /// </summary>
    public Task<JsonObject> CheckAsync(string path) => Task.Run(() => Check(path));

    /// <summary>Checks the file; the answer says <c>ok</c> or carries the checker's <c>error</c>.</summary>
    public JsonObject Check(string path)
    {
        lock (_gate)
        {
            _process.StandardInput.WriteLine(path);
            _process.StandardInput.Flush();
            var line = _process.StandardOutput.ReadLine()
                ?? throw new InvalidOperationException(
                    $"The ONNX checker exited ({TorchvisionReference.Python} with python3-onnx; see build/prerequisites.sh --tests):\n" +
                    _stderr.Result);
            return JsonNode.Parse(line)!.AsObject();
        }
    }

    public void Dispose()
    {
        _process.StandardInput.Close();
        if (!_process.WaitForExit(TimeSpan.FromSeconds(10)))
            _process.Kill();
        _process.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class OnnxCollection : ICollectionFixture<OnnxChecker>
{
    public const string Name = "onnx checker";
}
