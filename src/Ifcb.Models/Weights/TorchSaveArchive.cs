using System.Globalization;
using System.IO.Compression;
using static TorchSharp.torch;

namespace Ifcb.Models.Weights;

/// <summary>
/// A <c>torch.save</c> file (a zip of <c>{name}/data.pkl</c> and one <c>{name}/data/{key}</c> entry per storage) opened
/// for reading. Only the pickle is read up front (at most <see cref="MaxPickleBytes"/>; a resnet18 state dict's is 15 KB);
/// a tensor's bytes go from its entry straight into the tensor it is read into, when it is read. Every storage must be
/// exactly as large as the pickle says, so what is allocated is bounded by what the file holds, not by what it claims.
/// </summary>
public sealed class TorchSaveArchive : IDisposable
{
    /// <summary>Largest <c>data.pkl</c> read (it holds names, shapes and small values only, never tensor data).</summary>
    public const int MaxPickleBytes = 64 << 20;

    /// <summary>Deflate cannot expand data more than ~1032×; an entry claiming more is lying about its size.</summary>
    private const long MaxDeflateRatio = 1100;

    private readonly ZipArchive _zip;
    private readonly string _prefix;

    private TorchSaveArchive(ZipArchive zip, string prefix, object? root)
    {
        _zip = zip;
        _prefix = prefix;
        Root = root;
    }

    /// <summary>The unpickled object: for a state dict, a <see cref="PickleDict"/> of names to <see cref="TorchTensorRef"/>s.</summary>
    public object? Root { get; }

    /// <summary>Opens a torch.save zip. The stream must be seekable and stay open while tensors are read.</summary>
    /// <exception cref="InvalidDataException">Not a torch.save zip, or its pickle is malformed or too large.</exception>
    public static TorchSaveArchive Open(Stream stream, bool leaveOpen = true)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanSeek)
            throw new ArgumentException("A torch.save file is a zip; its stream must be seekable.", nameof(stream));
        Span<byte> signature = stackalloc byte[4];
        var start = stream.Position;
        if (stream.ReadAtLeast(signature, 4, throwOnEndOfStream: false) < 4 || signature is not [0x50, 0x4B, 0x03, 0x04])
            throw new InvalidDataException(
                "Not a torch.save file: it is not a zip (files from torch older than 1.6 use a legacy format; " +
                "load and re-save them with a current torch).");
        stream.Position = start;
        ZipArchive zip;
        try
        {
            zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"Not a torch.save file: its zip directory is unreadable ({e.Message}).", e);
        }
        try
        {
            var pickles = zip.Entries
                .Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1).ToList();
            if (pickles.Count != 1)
                throw new InvalidDataException($"Not a torch.save file: expected one NAME/data.pkl entry, found {pickles.Count}.");
            var entry = pickles[0];
            if (entry.Length > MaxPickleBytes)
                throw new InvalidDataException(Invariant($"The torch.save pickle is {entry.Length} bytes; the limit is {MaxPickleBytes}."));
            using var content = entry.Open();
            var root = TorchPickle.Parse(ReadBounded(content, MaxPickleBytes));
            return new TorchSaveArchive(zip, entry.FullName[..entry.FullName.IndexOf('/', StringComparison.Ordinal)], root);
        }
        catch
        {
            zip.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads <paramref name="tensor"/> into <paramref name="destination"/>, which must have its shape (the dtype may differ:
    /// values are converted as <c>copy_</c> does). A contiguous CPU destination of the same dtype is filled straight from
    /// the file; anything else goes through one temporary tensor of the storage's size.
    /// </summary>
    /// <exception cref="InvalidDataException">
    /// The storage is missing, of another size than the pickle says, or too short for the tensor.
    /// </exception>
    /// <exception cref="ArgumentException">The destination's shape differs.</exception>
    public void ReadInto(TorchTensorRef tensor, Tensor destination)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ArgumentNullException.ThrowIfNull(destination);
        if (!destination.shape.SequenceEqual(tensor.Shape))
            throw new ArgumentException(Invariant(
                $"The destination is [{string.Join(", ", destination.shape)}]; the stored tensor is [{string.Join(", ", tensor.Shape)}]."),
                nameof(destination));
        var entry = StorageEntry(tensor);
        var elementSize = ElementSize(tensor.Storage.DType);
        var count = tensor.ElementCount;
        if (count == 0)
            return;
        using var content = entry.Open();
        if (IsContiguous(tensor.Shape, tensor.Stride) && destination.dtype == tensor.Storage.DType
            && destination.device_type == TorchSharp.DeviceType.CPU && destination.is_contiguous())
        {
            Skip(content, tensor.Offset * elementSize);
            ReadExactly(content, destination.bytes, entry.FullName);
            return;
        }
        using var storage = empty(tensor.Storage.Count, tensor.Storage.DType);
        ReadExactly(content, storage.bytes, entry.FullName);
        using var view = storage.as_strided(tensor.Shape, tensor.Stride, tensor.Offset);
        using (no_grad())
            destination.copy_(view);
    }

    /// <summary>Allocates a CPU tensor of the stored dtype and shape and reads <paramref name="tensor"/> into it.</summary>
    public Tensor Read(TorchTensorRef tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        StorageEntry(tensor); // size checks before allocating
        var result = empty(tensor.Shape, tensor.Storage.DType);
        try
        {
            ReadInto(tensor, result);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    public void Dispose() => _zip.Dispose();

    /// <summary>Bytes per element of the dtypes torch.save storages hold.</summary>
    public static long ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 or ScalarType.Int64 or ScalarType.ComplexFloat32 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        ScalarType.Int8 or ScalarType.Byte or ScalarType.Bool => 1,
        ScalarType.ComplexFloat64 => 16,
        _ => throw new InvalidDataException($"Tensors of type {dtype} are not supported."),
    };

    // The storage's entry, checked against the pickle: exact size, a believable compression ratio, the tensor inside it.
    private ZipArchiveEntry StorageEntry(TorchTensorRef tensor)
    {
        var storage = tensor.Storage;
        var name = $"{_prefix}/data/{storage.Key}";
        var entry = _zip.GetEntry(name)
            ?? throw new InvalidDataException($"The torch.save file has no entry {name} for a tensor's storage.");
        long bytes;
        try
        {
            bytes = checked(storage.Count * ElementSize(storage.DType));
        }
        catch (OverflowException)
        {
            throw new InvalidDataException(Invariant(
                $"Storage {storage.Key} declares {storage.Count} elements, more than any file holds."));
        }
        if (entry.Length != bytes)
            throw new InvalidDataException(
                Invariant($"Storage {storage.Key} declares {storage.Count} {storage.DType} elements ({bytes} bytes) ") +
                Invariant($"but its entry holds {entry.Length} bytes."));
        if (entry.CompressedLength != entry.Length && entry.Length > (entry.CompressedLength * MaxDeflateRatio) + 4096)
            throw new InvalidDataException(
                Invariant($"Storage {storage.Key} claims {entry.Length} bytes from {entry.CompressedLength} compressed: ") +
                "no real compression achieves that.");
        if (bytes > int.MaxValue)
            throw new InvalidDataException(Invariant($"Storage {storage.Key} is {bytes} bytes; tensors over 2 GiB are not supported."));
        if (tensor.ElementCount > 0)
        {
            var last = tensor.Offset;
            for (var d = 0; d < tensor.Shape.Length; d++)
            {
                if (tensor.Stride[d] < 0)
                    throw new InvalidDataException($"A tensor in storage {storage.Key} has a negative stride.");
                last += (tensor.Shape[d] - 1) * tensor.Stride[d];
            }
            if (last >= storage.Count || last < 0)
                throw new InvalidDataException(
                    Invariant($"A tensor of shape [{string.Join(", ", tensor.Shape)}] reaches element {last} of storage {storage.Key}, ") +
                    Invariant($"which has {storage.Count}."));
        }
        return entry;
    }

    private static bool IsContiguous(long[] shape, long[] stride)
    {
        long expected = 1;
        for (var d = shape.Length - 1; d >= 0; d--)
        {
            if (shape[d] != 1 && stride[d] != expected)
                return false;
            expected *= shape[d];
        }
        return true;
    }

    private static void Skip(Stream content, long bytes)
    {
        Span<byte> scratch = stackalloc byte[4096];
        while (bytes > 0)
        {
            var read = content.Read(scratch[..(int)Math.Min(scratch.Length, bytes)]);
            if (read == 0)
                throw new InvalidDataException("A tensor's storage ends before the tensor starts.");
            bytes -= read;
        }
    }

    private static void ReadExactly(Stream content, Span<byte> destination, string entry)
    {
        try
        {
            content.ReadExactly(destination);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"The torch.save entry {entry} is shorter than its tensor.", e);
        }
    }

    internal static byte[] ReadBounded(Stream content, int limit)
    {
        // A zip's declared length can lie; never read more than the limit whatever it says.
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = content.Read(chunk, 0, chunk.Length)) > 0)
        {
            if (buffer.Length + read > limit)
                throw new InvalidDataException(Invariant($"The torch.save pickle is larger than {limit} bytes."));
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
