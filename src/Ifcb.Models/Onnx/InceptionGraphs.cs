using Ifcb.Models.Architectures;
using static TorchSharp.torch;

namespace Ifcb.Models.Onnx;

/// <summary>
/// torchvision's inception_v3 in eval mode: <c>transform_input</c> when the model has it, the stem, <c>Mixed_5b</c> …
/// <c>Mixed_7c</c>, global pool, <c>fc</c>. <c>AuxLogits</c> only runs in training mode, so it is not in the graph.
/// </summary>
internal sealed class InceptionV3Graph(OnnxGraphBuilder graph) : ArchitectureGraph(graph)
{
    public override OnnxValue Logits(ClassifierNet model, OnnxValue input)
    {
        var x = model is InceptionV3 { TransformInput: true }
            ? Graph.ChannelAffine("transform_input", input, InceptionV3.TransformInputScale, InceptionV3.TransformInputShift)
            : input;
        x = Chain(model, "", x,
            "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2",
            "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
            "Mixed_7a", "Mixed_7b", "Mixed_7c", "avgpool", "dropout");
        return Module(model, "", "fc", Graph.Flatten("flatten", x));
    }

    protected override OnnxValue Block(string path, nn.Module m, OnnxValue x) => m switch
    {
        InceptionV3.InceptionA => Graph.Concat(path, [
            Module(m, path, "branch1x1", x),
            Chain(m, path, x, "branch5x5_1", "branch5x5_2"),
            Chain(m, path, x, "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"),
            Module(m, path, "branch_pool", AveragePool3x3(path, x)),
        ]),
        InceptionV3.InceptionB => Graph.Concat(path, [
            Module(m, path, "branch3x3", x),
            Chain(m, path, x, "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"),
            Graph.MaxPool(path + ".max_pool", x, kernel: 3, stride: 2),
        ]),
        InceptionV3.InceptionC => Graph.Concat(path, [
            Module(m, path, "branch1x1", x),
            Chain(m, path, x, "branch7x7_1", "branch7x7_2", "branch7x7_3"),
            Chain(m, path, x, "branch7x7dbl_1", "branch7x7dbl_2", "branch7x7dbl_3", "branch7x7dbl_4", "branch7x7dbl_5"),
            Module(m, path, "branch_pool", AveragePool3x3(path, x)),
        ]),
        InceptionV3.InceptionD => Graph.Concat(path, [
            Chain(m, path, x, "branch3x3_1", "branch3x3_2"),
            Chain(m, path, x, "branch7x7x3_1", "branch7x7x3_2", "branch7x7x3_3", "branch7x7x3_4"),
            Graph.MaxPool(path + ".max_pool", x, kernel: 3, stride: 2),
        ]),
        InceptionV3.InceptionE => InceptionE(path, m, x),
        _ => base.Block(path, m, x),
    };

    // torchvision concatenates [1x1, cat(3x3_2a, 3x3_2b), cat(3x3dbl_3a, 3x3dbl_3b), pool]: one flat concat is the same.
    private OnnxValue InceptionE(string path, nn.Module m, OnnxValue x)
    {
        var branch3x3 = Module(m, path, "branch3x3_1", x);
        var branch3x3dbl = Chain(m, path, x, "branch3x3dbl_1", "branch3x3dbl_2");
        return Graph.Concat(path, [
            Module(m, path, "branch1x1", x),
            Module(m, path, "branch3x3_2a", branch3x3),
            Module(m, path, "branch3x3_2b", branch3x3),
            Module(m, path, "branch3x3dbl_3a", branch3x3dbl),
            Module(m, path, "branch3x3dbl_3b", branch3x3dbl),
            Module(m, path, "branch_pool", AveragePool3x3(path, x)),
        ]);
    }

    // F.avg_pool2d(x, 3, stride=1, padding=1) with PyTorch's default count_include_pad=True.
    private OnnxValue AveragePool3x3(string path, OnnxValue x) =>
        Graph.AveragePool(path + ".avg_pool", x, kernel: 3, stride: 1, padding: 1, countIncludePad: true);
}

/// <summary>
/// Cadene's inception_v4: <c>features.0..21</c> (BasicConv2d units, blocks whose branches are concatenated in
/// registration order, and the InceptionC blocks with split branches), a global average pool, <c>last_linear</c>.
/// </summary>
internal sealed class InceptionV4Graph(OnnxGraphBuilder graph) : ArchitectureGraph(graph)
{
    public override OnnxValue Logits(ClassifierNet model, OnnxValue input)
    {
        // forward() pools over the whole final map with count_include_pad=False and no padding: a global average.
        var x = Graph.GlobalAveragePool("avg_pool", Module(model, "", "features", input));
        return Module(model, "", "last_linear", Graph.Flatten("flatten", x));
    }

    protected override OnnxValue Block(string path, nn.Module m, OnnxValue x)
    {
        switch (m)
        {
            case InceptionV4.ParallelBranches:
                return Graph.Concat(path, [.. m.named_children().Select(branch => Module(Join(path, branch.name), branch.module, x))]);
            case InceptionV4.InceptionC:
                var x1 = Module(m, path, "branch1_0", x);
                var x2 = Chain(m, path, x, "branch2_0", "branch2_1", "branch2_2");
                return Graph.Concat(path, [
                    Module(m, path, "branch0", x),
                    Module(m, path, "branch1_1a", x1),
                    Module(m, path, "branch1_1b", x1),
                    Module(m, path, "branch2_3a", x2),
                    Module(m, path, "branch2_3b", x2),
                    Module(m, path, "branch3", x),
                ]);
            default:
                return base.Block(path, m, x);
        }
    }
}
