using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Ifcb.Models.Weights;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Ifcb.Models.Tests;

/// <summary>torch.save files as an attacker or a truncated download would write them: the reader neither runs nor believes them.</summary>
public sealed class StateDictReaderTests
{
    [Fact]
    public void A_storage_claiming_more_elements_than_its_entry_holds_is_refused_before_allocating()
    {
        // The pickle says 500,000,000 floats (2 GB); the file holds 64 bytes. PyBridge allocated what the pickle said.
        var file = TorchSave(Pickle(p => p.Tensor("w", storageKey: "0", count: 500_000_000, shape: [500_000_000])), ("0", new byte[64]));
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<InvalidDataException>(() => StateDictFile.Read(file, WeightsFormat.PyTorch));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - allocatedBefore < 1 << 20);
        Assert.Contains("declares 500000000 Float32 elements (2000000000 bytes) but its entry holds 64 bytes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_tensor_reaching_past_its_storage_is_refused()
    {
        var file = TorchSave(Pickle(p => p.Tensor("w", storageKey: "0", count: 4, shape: [8])), ("0", new byte[16]));
        var error = Assert.Throws<InvalidDataException>(() => StateDictFile.Read(file, WeightsFormat.PyTorch));
        Assert.Contains("reaches element 7 of storage 0, which has 4", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_pickle_that_would_run_code_in_Python_is_read_as_data_and_refused()
    {
        var marker = Path.Combine(Path.GetTempPath(), $"ifcb-pickle-{Guid.NewGuid():N}");
        // {"w": os.system("touch MARKER")}: pickle.load would run the command.
        var file = TorchSave(Pickle(p => p.Call("w", "os", "system", $"touch {marker}")));
        var error = Assert.Throws<InvalidDataException>(() => StateDictFile.Read(file, WeightsFormat.PyTorch));
        Assert.Contains("non-tensor entry 'w'", error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(marker));
    }

    [Theory]
    [InlineData(new byte[] { 0x80, 2, (byte)'}', (byte)'X', 0xFF, 0xFF, 0xFF, 0x7F }, "runs past the end")]
    [InlineData(new byte[] { 0x80, 2, (byte)'0' }, "pops more than it pushed")]
    [InlineData(new byte[] { 0x80, 2, (byte)'}', (byte)'h', 9 }, "memo 9 was never stored")]
    [InlineData(new byte[] { 0x80, 2, (byte)'}', (byte)'i' }, "unsupported pickle opcode 0x69")]
    [InlineData(new byte[] { 0x80, 2, (byte)'}' }, "truncated")]
    public void Malformed_pickles_are_InvalidDataException_naming_the_problem(byte[] pickle, string expected)
    {
        var error = Assert.Throws<InvalidDataException>(() => StateDictFile.Read(TorchSave(pickle), WeightsFormat.PyTorch));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Tensors_are_read_in_place_and_views_and_other_dtypes_are_converted()
    {
        // Written by PyBridge (deflated entries, data.pkl last), read back with shapes, dtypes and values intact.
        using var scope = NewDisposeScope();
        var weights = arange(24, dtype: ScalarType.Float32).reshape(2, 3, 4);
        var counts = tensor(new long[] { 7 });
        var stream = new MemoryStream();
        PyTorchPickler.PickleStateDict(stream, new Dictionary<string, Tensor> { ["w"] = weights, ["n"] = counts }, leaveOpen: true);
        stream.Position = 0;
        using var reader = StateDictReader.Open(stream, WeightsFormat.PyTorch);
        Assert.Equal([2L, 3, 4], reader.Tensors["w"].Shape);
        Assert.Equal(ScalarType.Int64, reader.Tensors["n"].DType);
        Assert.True(reader.Read("w").equal(weights).all().item<bool>());

        // Into a float64 destination: converted as copy_ does.
        var doubles = zeros([2, 3, 4], ScalarType.Float64);
        reader.ReadInto("w", doubles);
        Assert.True(doubles.equal(weights.to_type(ScalarType.Float64)).all().item<bool>());
        Assert.Throws<ArgumentException>(() => reader.ReadInto("w", zeros(24)));
        Assert.Throws<KeyNotFoundException>(() => reader.Read("missing"));

        // A transposed view saved by Python keeps its values (read through its storage and strides).
        var python = TorchSave(Pickle(p => p.Tensor("t", storageKey: "0", count: 6, shape: [3, 2], stride: [1, 3])),
            ("0", MemoryMarshalBytes([0f, 1, 2, 3, 4, 5])));
        using var transposed = StateDictReader.Open(python, WeightsFormat.PyTorch);
        Assert.Equal([0f, 3, 1, 4, 2, 5], transposed.Read("t").data<float>().ToArray());
    }

    private static byte[] MemoryMarshalBytes(float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (var i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        return bytes;
    }

    /// <summary>A torch.save zip: archive/data.pkl plus the given storages (stored, as torch writes them).</summary>
    private static MemoryStream TorchSave(byte[] pickle, params (string Key, byte[] Data)[] storages)
    {
        var stream = new MemoryStream();
        using (var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true))
        {
            using (var entry = zip.CreateEntry("archive/data.pkl", CompressionLevel.NoCompression).Open())
                entry.Write(pickle);
            foreach (var (key, data) in storages)
            {
                using var entry = zip.CreateEntry($"archive/data/{key}", CompressionLevel.NoCompression).Open();
                entry.Write(data);
            }
        }
        stream.Position = 0;
        return stream;
    }

    /// <summary>A protocol-2 pickle of one dict, written opcode by opcode as Python's pickler would.</summary>
    private static byte[] Pickle(Action<PickleWriter> items)
    {
        var writer = new PickleWriter();
        writer.Raw(0x80, 2, (byte)'}', (byte)'(');
        items(writer);
        writer.Raw((byte)'u', (byte)'.');
        return writer.ToArray();
    }

    private sealed class PickleWriter
    {
        private readonly MemoryStream _bytes = new();

        public void Raw(params byte[] bytes) => _bytes.Write(bytes);

        public void Text(string text)
        {
            var utf8 = Encoding.UTF8.GetBytes(text);
            Raw((byte)'X');
            Span<byte> length = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(length, utf8.Length);
            _bytes.Write(length);
            _bytes.Write(utf8);
        }

        public void Int(long value)
        {
            Raw((byte)'J');
            Span<byte> bytes = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(bytes, checked((int)value));
            _bytes.Write(bytes);
        }

        public void Global(string module, string name) => _bytes.Write(Encoding.ASCII.GetBytes($"c{module}\n{name}\n"));

        public void Tuple(IEnumerable<long> values)
        {
            Raw((byte)'(');
            foreach (var value in values)
                Int(value);
            Raw((byte)'t');
        }

        /// <summary>name: _rebuild_tensor_v2(('storage', torch.FloatStorage, key, 'cpu', count), 0, shape, stride, False, OrderedDict()).</summary>
        public void Tensor(string name, string storageKey, long count, long[] shape, long[]? stride = null)
        {
            stride ??= [.. shape.Select((_, d) => shape.Skip(d + 1).Aggregate(1L, (n, s) => n * s))];
            Text(name);
            Global("torch._utils", "_rebuild_tensor_v2");
            Raw((byte)'(', (byte)'(');
            Text("storage");
            Global("torch", "FloatStorage");
            Text(storageKey);
            Text("cpu");
            Int(count);
            Raw((byte)'t', (byte)'Q');
            Int(0);
            Tuple(shape);
            Tuple(stride);
            Raw(0x89);
            Global("collections", "OrderedDict");
            Raw((byte)')', (byte)'R', (byte)'t', (byte)'R');
        }

        public void Call(string name, string module, string function, string argument)
        {
            Text(name);
            Global(module, function);
            Text(argument);
            Raw(0x85, (byte)'R');
        }

        public byte[] ToArray() => _bytes.ToArray();
    }
}
