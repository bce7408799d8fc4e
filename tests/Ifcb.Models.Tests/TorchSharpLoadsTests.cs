using static TorchSharp.torch;

namespace Ifcb.Models.Tests;

/// <summary>
/// Proves the build step in Directory.Build.targets: on Debian 12 libLibTorchSharp.so only loads once its
/// GLIBCXX_3.4.32 requirement has been marked weak in the build output.
/// </summary>
public class TorchSharpLoadsTests
{
    [Fact]
    public void Conv2d_forward_and_backward_run_on_cpu()
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        var conv = nn.Conv2d(3, 4, kernel_size: 3, padding: 1);
        var input = randn(2, 3, 8, 8, requires_grad: true);

        var output = conv.forward(input);
        var loss = output.square().mean();
        loss.backward();

        Assert.Equal(new long[] { 2, 4, 8, 8 }, output.shape);
        Assert.True(loss.item<float>() > 0f);
        var weightGrad = conv.weight!.grad!;
        Assert.Equal(conv.weight.shape, weightGrad.shape);
        Assert.True(weightGrad.abs().sum().item<float>() > 0f, "backward produced an all-zero gradient");
        Assert.NotNull(input.grad);
    }

    [Fact]
    public void Only_the_build_output_copy_is_patched_and_by_exactly_one_flag_byte()
    {
        var output = Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so");
        var nugetRoot = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var cached = Path.Combine(nugetRoot, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(output), $"missing {output}");
        Assert.True(File.Exists(cached), $"missing {cached}");

        var patched = File.ReadAllBytes(output);
        var original = File.ReadAllBytes(cached);
        Assert.Equal(original.Length, patched.Length);
        var differing = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToList();
        var at = Assert.Single(differing);
        // vna_flags gains VER_FLG_WEAK (0x2) and nothing else.
        Assert.Equal(0x2, patched[at] ^ original[at]);
    }
}
