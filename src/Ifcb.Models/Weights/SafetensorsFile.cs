using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using static TorchSharp.torch;

namespace Ifcb.Models.Weights;

/// <summary>
/// A <c>.safetensors</c> file (8-byte header length, a JSON header of name → dtype, shape, byte range, then the data)
/// opened for reading: only the header is read up front (at most <see cref="MaxHeaderBytes"/>); each tensor's bytes
/// go from the file into the tensor when read. Every range must lie inside the file and match its shape and dtype.
/// </summary>
internal sealed class SafetensorsFile
{
    /// <summary>Largest header read (names and shapes; torchvision's largest models need a few KB).</summary>
    public const int MaxHeaderBytes = 16 << 20;

    private static readonly Dictionary<string, ScalarType> DTypes = new(StringComparer.Ordinal)
    {
        ["F64"] = ScalarType.Float64,
        ["F32"] = ScalarType.Float32,
        ["F16"] = ScalarType.Float16,
        ["BF16"] = ScalarType.BFloat16,
        ["I64"] = ScalarType.Int64,
        ["I32"] = ScalarType.Int32,
        ["I16"] = ScalarType.Int16,
        ["I8"] = ScalarType.Int8,
        ["U8"] = ScalarType.Byte,
        ["BOOL"] = ScalarType.Bool,
    };

    private readonly Stream _stream;
    private readonly long _dataStart;
    private readonly Dictionary<string, (StoredTensor Tensor, long Begin, long End)> _tensors;

    private SafetensorsFile(Stream stream, long dataStart, Dictionary<string, (StoredTensor, long, long)> tensors)
    {
        _stream = stream;
        _dataStart = dataStart;
        _tensors = tensors;
    }

    public IReadOnlyDictionary<string, StoredTensor> Tensors =>
        _tensors.ToDictionary(kv => kv.Key, kv => kv.Value.Tensor, StringComparer.Ordinal);

    /// <exception cref="InvalidDataException">Not a safetensors file, or its header is malformed or inconsistent with the file.</exception>
    public static SafetensorsFile Open(Stream stream)
    {
        var start = stream.Position;
        var available = stream.Length - start;
        Span<byte> prefix = stackalloc byte[8];
        if (stream.ReadAtLeast(prefix, 8, throwOnEndOfStream: false) < 8)
            throw new InvalidDataException("Not a safetensors file: it is shorter than its 8-byte header length.");
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > MaxHeaderBytes || headerLength > (ulong)(available - 8))
            throw new InvalidDataException(Invariant(
                $"Not a safetensors file: it declares a {headerLength}-byte header in a {available}-byte file (limit {MaxHeaderBytes})."));
        var header = new byte[headerLength];
        stream.ReadExactly(header);
        var dataStart = start + 8 + (long)headerLength;
        var dataLength = stream.Length - dataStart;
        var tensors = new Dictionary<string, (StoredTensor, long, long)>(StringComparer.Ordinal);
        try
        {
            using var document = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8 });
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                    continue;
                var info = property.Value;
                var dtypeName = info.GetProperty("dtype").GetString() ?? "";
                if (!DTypes.TryGetValue(dtypeName, out var dtype))
                    throw new InvalidDataException($"Tensor {property.Name} has dtype {dtypeName}, which is not supported.");
                var shape = info.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
                var offsets = info.GetProperty("data_offsets").EnumerateArray().Select(d => d.GetInt64()).ToArray();
                if (shape.Length > 64 || shape.Any(d => d < 0)
                    || offsets is not [var begin, var end] || begin < 0 || end < begin || end > dataLength)
                    throw new InvalidDataException($"Tensor {property.Name} has a shape or byte range that does not fit the file.");
                long bytes;
                try
                {
                    bytes = checked(shape.Aggregate(1L, (n, d) => checked(n * d)) * TorchSaveArchive.ElementSize(dtype));
                }
                catch (OverflowException)
                {
                    throw new InvalidDataException($"Tensor {property.Name} declares more elements than any file holds.");
                }
                if (bytes != end - begin || bytes > int.MaxValue)
                    throw new InvalidDataException(
                        Invariant($"Tensor {property.Name} needs {bytes} bytes but its range holds {end - begin} ") +
                        "(tensors over 2 GiB are not supported).");
                tensors[property.Name] = (new StoredTensor(dtype, shape), begin, end);
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw new InvalidDataException($"Not a safetensors file: its header is not the expected JSON ({e.Message}).", e);
        }
        return new SafetensorsFile(stream, dataStart, tensors);
    }

    public void ReadInto(string name, Tensor destination)
    {
        var (tensor, begin, _) = _tensors[name];
        if (!destination.shape.SequenceEqual(tensor.Shape))
            throw new ArgumentException(Invariant(
                $"The destination is [{string.Join(", ", destination.shape)}]; {name} is [{string.Join(", ", tensor.Shape)}]."),
                nameof(destination));
        if (destination.NumberOfElements == 0)
            return;
        _stream.Position = _dataStart + begin;
        if (destination.dtype == tensor.DType && destination.device_type == TorchSharp.DeviceType.CPU && destination.is_contiguous())
        {
            _stream.ReadExactly(destination.bytes);
            return;
        }
        using var staged = empty(tensor.Shape, tensor.DType);
        _stream.ReadExactly(staged.bytes);
        using (no_grad())
            destination.copy_(staged);
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
