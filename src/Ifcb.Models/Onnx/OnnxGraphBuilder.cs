using Google.Protobuf;
using Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ifcb.Models.Onnx;

/// <summary>
/// A value in the graph being built: its name and its shape per example (<c>[C, H, W]</c> or <c>[F]</c>; the batch
/// dimension is implicit). Shapes are tracked at export time because the spatial size is fixed by the checkpoint's
/// resize: that is what lets an adaptive average pool become a plain ONNX operator, and it catches a resize too small
/// for the architecture before any file is written.
/// </summary>
internal sealed record OnnxValue(string Name, long[] Shape)
{
    public long Channels => Shape[0];
    public long Height => Shape[1];
    public long Width => Shape[2];
}

/// <summary>
/// Builds an eval-mode ONNX graph (opset <see cref="OnnxExport.Opset"/>) node by node from TorchSharp modules: each
/// emitter reads the module's own hyperparameters (kernel, stride, padding, eps, …) and its weights, and names the
/// initializers by the state-dict keys (<c>layer1.0.conv1.weight</c>), so the file reads like torchvision's export.
/// Dropout is the identity in eval mode and emits nothing; BatchNorm stays a BatchNormalization node with its running
/// statistics (ONNX Runtime folds it into the convolution when it optimises the session).
/// </summary>
internal sealed class OnnxGraphBuilder
{
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    public GraphProto Graph { get; } = new();

    /// <summary>The graph input <paramref name="name"/>, float32 <c>[batch, ..shape]</c>; batch is named or fixed.</summary>
    public OnnxValue Input(string name, long[] shape, int? staticBatch)
    {
        Reserve(name);
        Graph.Input.Add(TensorInfo(name, shape, staticBatch));
        return new OnnxValue(name, shape);
    }

    /// <summary>Declares <paramref name="value"/> a graph output under its own name.</summary>
    public void Output(OnnxValue value, int? staticBatch) => Graph.Output.Add(TensorInfo(value.Name, value.Shape, staticBatch));

    /// <summary>Gives the node output <paramref name="value"/> the name <paramref name="name"/> (a graph output's, say).</summary>
    public OnnxValue Rename(OnnxValue value, string name)
    {
        var producer = Graph.Node.SingleOrDefault(n => n.Output.Contains(value.Name))
            ?? throw new InvalidOperationException($"{value.Name} is not computed by a node, so it cannot be renamed.");
        var renamed = Reserve(name);
        producer.Output[producer.Output.IndexOf(value.Name)] = renamed;
        foreach (var node in Graph.Node)
        {
            for (var i = 0; i < node.Input.Count; i++)
            {
                if (node.Input[i] == value.Name)
                    node.Input[i] = renamed;
            }
        }
        return value with { Name = renamed };
    }

    public OnnxValue Conv(string path, Conv2d conv, OnnxValue x)
    {
        if (conv.in_channels != x.Channels)
            throw Mismatch(path, $"expects {conv.in_channels} input channels, the graph has {x.Channels}");
        if (conv.padding_mode != PaddingModes.Zeros || conv.padding_type is not null || conv.padding is not { } padding || conv.transposed)
            throw new NotSupportedException($"{path}: only zero-padded, explicitly padded, non-transposed convolutions are exported.");
        var kernel = conv.kernel_size;
        var stride = conv.stride;
        var dilation = conv.dilation;
        var inputs = new List<string> { Initializer(path + ".weight", conv.weight!) };
        if (conv.bias is { } bias)
            inputs.Add(Initializer(path + ".bias", bias));
        var shape = new[]
        {
            conv.out_channels,
            SlidingOutput(x.Height, kernel[0], stride[0], padding[0], dilation[0], ceil: false, path),
            SlidingOutput(x.Width, kernel[1], stride[1], padding[1], dilation[1], ceil: false, path),
        };
        return Node("Conv", path, [x.Name, .. inputs], shape,
            Ints("kernel_shape", kernel), Ints("strides", stride), Ints("pads", [padding[0], padding[1], padding[0], padding[1]]),
            Ints("dilations", dilation), Int("group", conv.groups));
    }

    public OnnxValue BatchNorm(string path, BatchNorm2d norm, OnnxValue x)
    {
        if (norm.num_features != x.Channels)
            throw Mismatch(path, $"normalises {norm.num_features} channels, the graph has {x.Channels}");
        if (norm.weight is null || norm.bias is null || norm.running_mean is null || norm.running_var is null)
            throw new NotSupportedException($"{path}: only affine BatchNorm with running statistics is exported.");
        string[] inputs =
        [
            x.Name,
            Initializer(path + ".weight", norm.weight),
            Initializer(path + ".bias", norm.bias),
            Initializer(path + ".running_mean", norm.running_mean),
            Initializer(path + ".running_var", norm.running_var),
        ];
        return Node("BatchNormalization", path, inputs, x.Shape, Float("epsilon", norm.eps));
    }

    public OnnxValue Relu(string path, OnnxValue x) => Node("Relu", path, [x.Name], x.Shape);

    public OnnxValue MaxPool(string path, OnnxValue x, long kernel, long stride, long padding = 0, bool ceil = false) =>
        Node("MaxPool", path, [x.Name], PoolShape(path, x, kernel, stride, padding, ceil),
            Ints("kernel_shape", [kernel, kernel]), Ints("strides", [stride, stride]),
            Ints("pads", [padding, padding, padding, padding]), Int("ceil_mode", ceil ? 1 : 0));

    public OnnxValue MaxPool(string path, MaxPool2d pool, OnnxValue x)
    {
        if (pool.dilation is { } dilation && dilation.Any(d => d != 1))
            throw new NotSupportedException($"{path}: dilated max pooling is not exported.");
        return MaxPool(path, x, Square(path, pool.kernel_size), Square(path, pool.stride ?? pool.kernel_size),
            Square(path, pool.padding ?? [0]), pool.ceil_mode);
    }

    /// <param name="countIncludePad">PyTorch's <c>count_include_pad</c>: true by default there, false by default in ONNX.</param>
    public OnnxValue AveragePool(
        string path, OnnxValue x, long kernel, long stride, long padding, bool countIncludePad, bool ceil = false) =>
        Node("AveragePool", path, [x.Name], PoolShape(path, x, kernel, stride, padding, ceil),
            Ints("kernel_shape", [kernel, kernel]), Ints("strides", [stride, stride]),
            Ints("pads", [padding, padding, padding, padding]), Int("ceil_mode", ceil ? 1 : 0),
            Int("count_include_pad", countIncludePad ? 1 : 0));

    public OnnxValue AveragePool(string path, AvgPool2d pool, OnnxValue x)
    {
        if (pool.divisor_override is not null)
            throw new NotSupportedException($"{path}: average pooling with divisor_override is not exported.");
        return AveragePool(path, x, Square(path, pool.kernel_size), Square(path, pool.stride ?? pool.kernel_size),
            Square(path, pool.padding ?? [0]), pool.count_include_pad, pool.ceil_mode);
    }

    public OnnxValue GlobalAveragePool(string path, OnnxValue x) => Node("GlobalAveragePool", path, [x.Name], [x.Channels, 1, 1]);

    /// <summary>
    /// PyTorch's adaptive average pool to <paramref name="outputHeight"/>×<paramref name="outputWidth"/>. ONNX has no such
    /// operator, but with the input size known it is linear: <c>P_h · X · P_wᵀ</c>, where row i of P averages PyTorch's bin
    /// <c>[floor(i·In/Out), ceil((i+1)·In/Out))</c>. That covers every size, including inputs smaller than the output
    /// (AlexNet and VGG at small resizes, where PyTorch repeats values). Same size: nothing to do; 1×1: GlobalAveragePool.
    /// </summary>
    public OnnxValue AdaptiveAveragePool(string path, OnnxValue x, long outputHeight, long outputWidth)
    {
        if (x.Height == outputHeight && x.Width == outputWidth)
            return x;
        if (outputHeight == 1 && outputWidth == 1)
            return GlobalAveragePool(path, x);
        var columns = Constant(path + ".columns", AdaptiveBins(x.Width, outputWidth, transpose: true), [x.Width, outputWidth]);
        var rows = Constant(path + ".rows", AdaptiveBins(x.Height, outputHeight, transpose: false), [outputHeight, x.Height]);
        var pooledColumns = Node("MatMul", path + ".matmul_columns", [x.Name, columns], [x.Channels, x.Height, outputWidth]);
        return Node("MatMul", path, [rows, pooledColumns.Name], [x.Channels, outputHeight, outputWidth]);
    }

    public OnnxValue Concat(string path, IReadOnlyList<OnnxValue> parts)
    {
        if (parts.Count == 1)
            return parts[0];
        var spatial = parts[0].Shape[1..];
        if (parts.Any(p => !p.Shape[1..].SequenceEqual(spatial)))
            throw Mismatch(path, "concatenates maps of different sizes: " + string.Join(", ", parts.Select(p => Describe(p.Shape))));
        long[] shape = [parts.Sum(p => p.Channels), .. spatial];
        return Node("Concat", path, [.. parts.Select(p => p.Name)], shape, Int("axis", 1));
    }

    public OnnxValue Add(string path, OnnxValue a, OnnxValue b)
    {
        if (!a.Shape.SequenceEqual(b.Shape))
            throw Mismatch(path, $"adds {Describe(a.Shape)} to {Describe(b.Shape)}");
        return Node("Add", path, [a.Name, b.Name], a.Shape);
    }

    public OnnxValue Flatten(string path, OnnxValue x) =>
        Node("Flatten", path, [x.Name], [x.Shape.Aggregate(1L, (p, d) => p * d)], Int("axis", 1));

    public OnnxValue Linear(string path, Linear linear, OnnxValue x)
    {
        if (x.Shape.Length != 1 || x.Shape[0] != linear.in_features)
            throw Mismatch(path, $"expects {linear.in_features} features, the graph has {Describe(x.Shape)}");
        var inputs = new List<string> { x.Name, Initializer(path + ".weight", linear.weight!) };
        if (linear.bias is { } bias)
            inputs.Add(Initializer(path + ".bias", bias));
        return Node("Gemm", path, [.. inputs], [linear.out_features], Int("transB", 1));
    }

    /// <summary><c>x * scale[c] + shift[c]</c> per channel, in float32 as PyTorch computes it on a float tensor.</summary>
    public OnnxValue ChannelAffine(string path, OnnxValue x, IReadOnlyList<double> scale, IReadOnlyList<double> shift)
    {
        var scaled = Node("Mul", path + ".mul", [x.Name, ChannelConstant(path + ".scale", scale)], x.Shape);
        return Node("Add", path, [scaled.Name, ChannelConstant(path + ".shift", shift)], x.Shape);
    }

    /// <summary><c>(x - mean[c]) / std[c]</c>, as <c>ImgNorm.ApplyInPlace</c> and torchvision's Normalize do in float32.</summary>
    public OnnxValue Normalize(string path, OnnxValue x, IReadOnlyList<double> mean, IReadOnlyList<double> std)
    {
        var centred = Node("Sub", path + ".sub", [x.Name, ChannelConstant(path + ".mean", mean)], x.Shape);
        return Node("Div", path, [centred.Name, ChannelConstant(path + ".std", std)], x.Shape);
    }

    public OnnxValue Softmax(string path, OnnxValue x) => Node("Softmax", path, [x.Name], x.Shape, Int("axis", 1));

    /// <summary>Adds a node whose single output is named <paramref name="path"/> (made unique if taken).</summary>
    private OnnxValue Node(string opType, string path, string[] inputs, long[] shape, params AttributeProto[] attributes)
    {
        var output = Reserve(path);
        var node = new NodeProto { OpType = opType, Name = output, Input = { inputs }, Output = { output } };
        node.Attribute.Add(attributes);
        Graph.Node.Add(node);
        return new OnnxValue(output, shape);
    }

    private string Initializer(string name, Tensor tensor)
    {
        using var scope = NewDisposeScope();
        var values = tensor.detach().cpu().to_type(ScalarType.Float32).contiguous();
        return AddInitializer(name, values.shape, values.bytes);
    }

    private string Constant(string name, float[] values, long[] shape) =>
        AddInitializer(name, shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));

    private string ChannelConstant(string name, IReadOnlyList<double> perChannel) =>
        Constant(name, [.. perChannel.Select(v => (float)v)], [1, perChannel.Count, 1, 1]);

    private string AddInitializer(string name, long[] shape, ReadOnlySpan<byte> littleEndianFloats)
    {
        // TensorProto.raw_data is little-endian by definition; the spans above are in machine order.
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("ONNX export writes raw tensor data and needs a little-endian machine.");
        var unique = Reserve(name);
        Graph.Initializer.Add(new TensorProto
        {
            Name = unique,
            DataType = (int)TensorProto.Types.DataType.Float,
            Dims = { shape },
            RawData = ByteString.CopyFrom(littleEndianFloats),
        });
        return unique;
    }

    private string Reserve(string name)
    {
        var unique = name;
        for (var i = 1; !_names.Add(unique); i++)
            unique = $"{name}_{i}";
        return unique;
    }

    private static float[] AdaptiveBins(long input, long output, bool transpose)
    {
        var matrix = new float[input * output];
        for (long o = 0; o < output; o++)
        {
            var start = o * input / output;
            var end = ((o + 1) * input + output - 1) / output;
            for (var i = start; i < end; i++)
                matrix[transpose ? i * output + o : o * input + i] = 1f / (end - start);
        }
        return matrix;
    }

    private static long[] PoolShape(string path, OnnxValue x, long kernel, long stride, long padding, bool ceil) =>
    [
        x.Channels,
        SlidingOutput(x.Height, kernel, stride, padding, 1, ceil, path),
        SlidingOutput(x.Width, kernel, stride, padding, 1, ceil, path),
    ];

    /// <summary>PyTorch's output size for convolution and pooling, with its ceil-mode rule (no window starts in the padding).</summary>
    private static long SlidingOutput(long input, long kernel, long stride, long padding, long dilation, bool ceil, string path)
    {
        var span = input + 2 * padding - dilation * (kernel - 1) - 1;
        if (span < 0)
            throw new ArgumentException(
                $"{path}: a {input}-pixel map is smaller than the {kernel}-pixel window; the resize is too small for this architecture.");
        var output = (ceil ? (span + stride - 1) / stride : span / stride) + 1;
        if (ceil && (output - 1) * stride >= input + padding)
            output--;
        return output;
    }

    private static long Square(string path, long[] values) => values.Length switch
    {
        1 => values[0],
        2 when values[0] == values[1] => values[0],
        _ => throw new NotSupportedException($"{path}: only square pooling windows are exported, got [{string.Join(", ", values)}]."),
    };

    private static string Describe(long[] shape) => $"[{string.Join('x', shape)}]";

    private static InvalidOperationException Mismatch(string path, string what) =>
        new($"{path} {what}: the module tree does not match the graph being exported.");

    private static ValueInfoProto TensorInfo(string name, long[] shape, int? staticBatch)
    {
        var dims = new TensorShapeProto();
        dims.Dim.Add(staticBatch is { } n
            ? new TensorShapeProto.Types.Dimension { DimValue = n }
            : new TensorShapeProto.Types.Dimension { DimParam = "batch" });
        dims.Dim.Add(shape.Select(d => new TensorShapeProto.Types.Dimension { DimValue = d }));
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto
            {
                TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = dims },
            },
        };
    }

    private static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    private static AttributeProto Float(string name, double value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = (float)value };

    private static AttributeProto Ints(string name, IEnumerable<long> values) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Ints, Ints = { values } };
}
