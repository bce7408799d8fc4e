using TorchSharp;
using static TorchSharp.torch;

namespace Ifcb.Models.Tests;

public sealed class DeviceSelectionTests
{
    [Fact]
    public void Cpu_is_always_available()
    {
        Assert.Equal(DeviceType.CPU, DeviceSelection.Resolve("cpu").type);
        Assert.Equal(DeviceType.CPU, DeviceSelection.Resolve(" CPU ").type);
    }

    // Building a CUDA Device object needs TorchSharp's CUDA backend, which this repository's CPU-only libtorch lacks,
    // so the CUDA-present branch is only exercised where CUDA exists.
    [Fact]
    public void Auto_follows_cuda_availability()
    {
        Assert.Equal(DeviceType.CPU, DeviceSelection.Resolve("auto", cudaAvailable: false).type);
        Assert.Equal(cuda.is_available() ? DeviceType.CUDA : DeviceType.CPU, DeviceSelection.Resolve("auto").type);
    }

    [Fact]
    public void Cuda_without_cuda_is_an_error_that_suggests_cpu()
    {
        var error = Assert.Throws<InvalidOperationException>(() => DeviceSelection.Resolve("cuda", cudaAvailable: false));
        Assert.Contains("--device cpu", error.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => DeviceSelection.Resolve("cuda:1", cudaAvailable: false));
        if (!cuda.is_available())
            Assert.Throws<InvalidOperationException>(() => DeviceSelection.Resolve("cuda"));
        else
            Assert.Equal(DeviceType.CUDA, DeviceSelection.Resolve("cuda").type);
    }

    [Fact]
    public void Unknown_device_lists_the_choices()
    {
        var error = Assert.Throws<ArgumentException>(() => DeviceSelection.Resolve("tpu"));
        Assert.Contains("auto, cpu, cuda", error.Message, StringComparison.Ordinal);
    }
}
