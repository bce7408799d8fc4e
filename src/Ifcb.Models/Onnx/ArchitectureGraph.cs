using Ifcb.Models.Architectures;
using TorchSharp.Modules;
using static TorchSharp.torch;
using AlexNet = Ifcb.Models.Architectures.AlexNet;
using InceptionV3 = Ifcb.Models.Architectures.InceptionV3;
using ResNet = Ifcb.Models.Architectures.ResNet;

namespace Ifcb.Models.Onnx;

/// <summary>
/// Emits one zoo family's eval-mode forward pass into an <see cref="OnnxGraphBuilder"/>, walking the model's modules by
/// their torchvision names (<c>layer1.0.conv1</c>, <c>features.denseblock1.denselayer1.norm1</c>, …). Standard modules
/// (Conv2d, BatchNorm2d, ReLU, pools, Dropout, Linear, Sequential) are emitted here; each family emits its own blocks
/// (<see cref="Block"/>) following its C# <c>forward</c>, which in turn follows torchvision's.
/// </summary>
internal abstract class ArchitectureGraph(OnnxGraphBuilder graph)
{
    protected OnnxGraphBuilder Graph { get; } = graph;

    /// <summary>The graph from the (normalised) input to the logits.</summary>
    public abstract OnnxValue Logits(ClassifierNet model, OnnxValue input);

    /// <summary>The graph builder for <paramref name="model"/>'s family.</summary>
    /// <exception cref="NotSupportedException">A model type the exporter does not know.</exception>
    public static ArchitectureGraph For(ClassifierNet model, OnnxGraphBuilder graph) => model switch
    {
        AlexNet or Vgg => new PooledClassifierGraph(graph),
        SqueezeNet => new SqueezeNetGraph(graph),
        ResNet => new ResNetGraph(graph),
        DenseNet => new DenseNetGraph(graph),
        InceptionV3 => new InceptionV3Graph(graph),
        InceptionV4 => new InceptionV4Graph(graph),
        _ => throw new NotSupportedException($"No ONNX export for {model.GetType().Name} ({model.Architecture})."),
    };

    /// <summary>A family's own block at <paramref name="path"/>; the default knows none.</summary>
    protected virtual OnnxValue Block(string path, nn.Module module, OnnxValue x) =>
        throw new NotSupportedException($"{path}: no ONNX export for a {module.GetType().Name} in {GetType().Name}.");

    /// <summary>Emits any module: the standard ones here, Sequential child by child, the rest through <see cref="Block"/>.</summary>
    protected OnnxValue Module(string path, nn.Module module, OnnxValue x) => module switch
    {
        Conv2d conv => Graph.Conv(path, conv, x),
        BatchNorm2d norm => Graph.BatchNorm(path, norm, x),
        ReLU => Graph.Relu(path, x),
        MaxPool2d pool => Graph.MaxPool(path, pool, x),
        AvgPool2d pool => Graph.AveragePool(path, pool, x),
        AdaptiveAvgPool2d pool => Graph.AdaptiveAveragePool(path, x, pool.output_size[0], pool.output_size[^1]),
        Dropout => x,
        Linear linear => Graph.Linear(path, linear, x),
        Sequential sequence => sequence.named_children()
            .Aggregate(x, (value, child) => Module(Join(path, child.name), child.module, value)),
        BasicConv2d => Graph.Relu(path + ".relu",
            BatchNorm(path + ".bn", Child(module, path, "bn"), Conv(path + ".conv", Child(module, path, "conv"), x))),
        _ => Block(path, module, x),
    };

    /// <summary>The child <paramref name="name"/> of <paramref name="parent"/> (at <paramref name="parentPath"/>), emitted on x.</summary>
    protected OnnxValue Module(nn.Module parent, string parentPath, string name, OnnxValue x) =>
        Module(Join(parentPath, name), Child(parent, parentPath, name), x);

    /// <summary>A chain of named children of one parent, each fed the previous one's output.</summary>
    protected OnnxValue Chain(nn.Module parent, string parentPath, OnnxValue x, params string[] names) =>
        names.Aggregate(x, (value, name) => Module(parent, parentPath, name, value));

    protected static string Join(string path, string name) => path.Length == 0 ? name : $"{path}.{name}";

    protected static nn.Module Child(nn.Module parent, string parentPath, string name)
    {
        foreach (var (childName, module) in parent.named_children())
        {
            if (childName == name)
                return module;
        }
        throw new InvalidOperationException(
            $"{Join(parentPath, name)} is not a module of this {parent.GetType().Name}; the ONNX export walks torchvision's names.");
    }

    protected static bool HasChild(nn.Module parent, string name) => parent.named_children().Any(c => c.name == name);

    private OnnxValue Conv(string path, nn.Module module, OnnxValue x) =>
        module is Conv2d conv ? Graph.Conv(path, conv, x) : throw new InvalidOperationException($"{path} is not a Conv2d.");

    private OnnxValue BatchNorm(string path, nn.Module module, OnnxValue x) =>
        module is BatchNorm2d norm ? Graph.BatchNorm(path, norm, x) : throw new InvalidOperationException($"{path} is not a BatchNorm2d.");
}

/// <summary>AlexNet and VGG: <c>features</c>, <c>avgpool</c> (adaptive), flatten, <c>classifier</c>.</summary>
internal sealed class PooledClassifierGraph(OnnxGraphBuilder graph) : ArchitectureGraph(graph)
{
    public override OnnxValue Logits(ClassifierNet model, OnnxValue input)
    {
        var x = Chain(model, "", input, "features", "avgpool");
        return Module(model, "", "classifier", Graph.Flatten("flatten", x));
    }
}

/// <summary>SqueezeNet 1.0/1.1: <c>features</c> with Fire blocks, <c>classifier</c> (dropout, conv, ReLU, global pool), flatten.</summary>
internal sealed class SqueezeNetGraph(OnnxGraphBuilder graph) : ArchitectureGraph(graph)
{
    public override OnnxValue Logits(ClassifierNet model, OnnxValue input) =>
        Graph.Flatten("flatten", Chain(model, "", input, "features", "classifier"));

    protected override OnnxValue Block(string path, nn.Module module, OnnxValue x)
    {
        if (module is not SqueezeNet.Fire)
            return base.Block(path, module, x);
        var squeezed = Graph.Relu(path + ".squeeze_activation", Module(module, path, "squeeze", x));
        return Graph.Concat(path, [
            Graph.Relu(path + ".expand1x1_activation", Module(module, path, "expand1x1", squeezed)),
            Graph.Relu(path + ".expand3x3_activation", Module(module, path, "expand3x3", squeezed)),
        ]);
    }
}

/// <summary>ResNet: stem, <c>layer1..4</c> of BasicBlock/Bottleneck (with <c>downsample</c> where present), pool, <c>fc</c>.</summary>
internal sealed class ResNetGraph(OnnxGraphBuilder graph) : ArchitectureGraph(graph)
{
    public override OnnxValue Logits(ClassifierNet model, OnnxValue input)
    {
        var x = Chain(model, "", input, "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool");
        return Module(model, "", "fc", Graph.Flatten("flatten", x));
    }

    protected override OnnxValue Block(string path, nn.Module module, OnnxValue x)
    {
        string[] residual = module switch
        {
            ResNet.BasicBlock => ["conv1", "bn1", "relu", "conv2", "bn2"],
            ResNet.Bottleneck => ["conv1", "bn1", "relu", "conv2", "bn2", "relu", "conv3", "bn3"],
            _ => [],
        };
        if (residual.Length == 0)
            return base.Block(path, module, x);
        var identity = HasChild(module, "downsample") ? Module(module, path, "downsample", x) : x;
        var sum = Graph.Add(path + ".add", Chain(module, path, x, residual), identity);
        return Graph.Relu(path + ".relu_out", sum);
    }
}

/// <summary>DenseNet-BC: <c>features</c> (dense blocks, transitions, <c>norm5</c>), ReLU, global pool, <c>classifier</c>.</summary>
internal sealed class DenseNetGraph(OnnxGraphBuilder graph) : ArchitectureGraph(graph)
{
    public override OnnxValue Logits(ClassifierNet model, OnnxValue input)
    {
        var x = Graph.Relu("relu", Module(model, "", "features", input));
        x = Graph.GlobalAveragePool("adaptive_avg_pool2d", x);
        return Module(model, "", "classifier", Graph.Flatten("flatten", x));
    }

    protected override OnnxValue Block(string path, nn.Module module, OnnxValue x)
    {
        switch (module)
        {
            case DenseNet.DenseBlock:
                // Each layer reads every earlier feature map concatenated; the block returns them all.
                var features = new List<OnnxValue> { x };
                foreach (var (name, layer) in module.named_children())
                    features.Add(Module(Join(path, name), layer, Graph.Concat($"{path}.{name}.cat", features)));
                return Graph.Concat(path, features);
            case DenseNet.DenseLayer:
                return Chain(module, path, x, "norm1", "relu1", "conv1", "norm2", "relu2", "conv2");
            default:
                return base.Block(path, module, x);
        }
    }
}
