using System.Buffers.Binary;
using System.Collections;
using System.Globalization;
using System.Numerics;
using System.Text;
using static TorchSharp.torch;

namespace Ifcb.Models.Weights;

/// <summary>A Python global (<c>module.name</c>) a pickle names: a class or function, recorded, never imported or called.</summary>
public sealed record PickleGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>
/// What a pickle builds by calling a global this reader does not interpret (a Lightning AttributeDict, an argparse
/// Namespace, a callback class…): kept as data, never run. Dict and list subclasses keep their items.
/// </summary>
public sealed class PickleObject(PickleGlobal type, IReadOnlyList<object?> arguments)
{
    public PickleGlobal Type { get; } = type;
    public IReadOnlyList<object?> Arguments { get; } = arguments;

    /// <summary>What BUILD set (usually the instance's <c>__dict__</c>), or null.</summary>
    public object? State { get; internal set; }

    /// <summary>Items set on it as on a dict (dict subclasses such as Lightning's AttributeDict).</summary>
    public PickleDict Items { get; } = new();

    /// <summary>Items appended to it as to a list.</summary>
    public List<object?> ListItems { get; } = [];
}

/// <summary>A pickled dict (plain, OrderedDict or the items of a dict subclass), in insertion order.</summary>
public sealed class PickleDict : IEnumerable<KeyValuePair<object, object?>>
{
    /// <summary>Stands for Python's None as a key.</summary>
    public static readonly object NoneKey = new();

    private readonly List<KeyValuePair<object, object?>> _entries = [];
    private readonly Dictionary<object, int> _index = [];

    public int Count => _entries.Count;

    /// <summary>The value under <paramref name="key"/>, or null when absent.</summary>
    public object? this[object key] => _index.TryGetValue(key, out var i) ? _entries[i].Value : null;

    public bool ContainsKey(object key) => _index.ContainsKey(key);

    public IEnumerable<object> Keys => _entries.Select(e => e.Key);

    internal void Set(object? key, object? value)
    {
        key ??= NoneKey;
        if (_index.TryGetValue(key, out var i))
            _entries[i] = new(key, value);
        else
        {
            _index[key] = _entries.Count;
            _entries.Add(new(key, value));
        }
    }

    public IEnumerator<KeyValuePair<object, object?>> GetEnumerator() => _entries.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>
/// A storage of a torch.save archive: the entry <c>data/{Key}</c> holding <see cref="Count"/> elements of
/// <see cref="DType"/>.
/// </summary>
public sealed record TorchStorageRef(string Key, ScalarType DType, long Count);

/// <summary>A tensor of a torch.save pickle: how it views its storage. Its bytes stay in the archive until read.</summary>
public sealed record TorchTensorRef(TorchStorageRef Storage, long Offset, long[] Shape, long[] Stride)
{
    public long ElementCount => Shape.Aggregate(1L, (n, d) => n * d);
}

/// <summary>
/// Reads the pickle (<c>data.pkl</c>) of a torch.save file as data: the protocol-2 to 5 opcodes torch and Lightning
/// write, with every tensor left in the archive as a <see cref="TorchTensorRef"/>. Nothing named by the pickle is
/// imported or executed (<c>pickle.load</c> would run arbitrary code; this builds <see cref="PickleObject"/>s), and every
/// length is checked against the bytes actually present, so the reader allocates at most a small multiple of its input.
/// Why our own reader rather than PyBridge's: that one reads every tensor into a managed array as it unpickles (and
/// sizes the array from the pickle, not from the data), so a checkpoint was held in memory two or three times.
/// </summary>
public static class TorchPickle
{
    /// <summary>Parses a pickle. Python ints become <see cref="long"/> (or <see cref="BigInteger"/>), tuples <c>object?[]</c>,
    /// lists <see cref="List{T}"/>, dicts <see cref="PickleDict"/>, str <see cref="string"/>, bytes <c>byte[]</c>.</summary>
    /// <exception cref="InvalidDataException">
    /// The pickle is malformed, truncated or uses something this reader does not support.
    /// </exception>
    public static object? Parse(ReadOnlySpan<byte> pickle) => new Machine(pickle.ToArray()).Run();

    private static readonly Dictionary<string, ScalarType> StorageTypes = new(StringComparer.Ordinal)
    {
        ["DoubleStorage"] = ScalarType.Float64,
        ["FloatStorage"] = ScalarType.Float32,
        ["HalfStorage"] = ScalarType.Float16,
        ["BFloat16Storage"] = ScalarType.BFloat16,
        ["LongStorage"] = ScalarType.Int64,
        ["IntStorage"] = ScalarType.Int32,
        ["ShortStorage"] = ScalarType.Int16,
        ["CharStorage"] = ScalarType.Int8,
        ["ByteStorage"] = ScalarType.Byte,
        ["BoolStorage"] = ScalarType.Bool,
        ["ComplexFloatStorage"] = ScalarType.ComplexFloat32,
        ["ComplexDoubleStorage"] = ScalarType.ComplexFloat64,
    };

    private sealed class Machine(byte[] input)
    {
        private readonly List<object?> _stack = [];
        private readonly List<int> _marks = [];
        private readonly Dictionary<long, object?> _memo = [];
        private int _position;

        public object? Run()
        {
            while (true)
            {
                var at = _position;
                var opcode = Byte();
                switch (opcode)
                {
                    case 0x80: // PROTO
                        if (Byte() > 5)
                            throw Invalid(at, "pickle protocol newer than 5");
                        break;
                    case 0x95: // FRAME: a length hint only
                        Bytes(8);
                        break;
                    case (byte)'.': // STOP
                        if (_stack.Count != 1 || _marks.Count != 0)
                            throw Invalid(at, "the pickle does not end with exactly one object");
                        return _stack[0];
                    case (byte)'(': _marks.Add(_stack.Count); break; // MARK
                    case (byte)'0': Pop(at); break; // POP
                    case (byte)'1': PopMark(at); break; // POP_MARK
                    case (byte)'2': Push(Peek(at)); break; // DUP
                    case (byte)'N': Push(null); break; // NONE
                    case 0x88: Push(true); break; // NEWTRUE
                    case 0x89: Push(false); break; // NEWFALSE
                    case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Bytes(4))); break; // BININT
                    case (byte)'K': Push((long)Byte()); break; // BININT1
                    case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2))); break; // BININT2
                    case 0x8a: Push(Long(Bytes(Byte()))); break; // LONG1
                    case 0x8b: // LONG4
                        Push(Long(Bytes(Length((ulong)Math.Max(0, BinaryPrimitives.ReadInt32LittleEndian(Bytes(4))), at))));
                        break;
                    case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Bytes(8))); break; // BINFLOAT
                    case (byte)'X': // BINUNICODE
                        Push(Utf8(Bytes(Length(BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4)), at)), at));
                        break;
                    case 0x8c: Push(Utf8(Bytes(Byte()), at)); break; // SHORT_BINUNICODE
                    case 0x8d: Push(Utf8(Bytes(Length(BinaryPrimitives.ReadUInt64LittleEndian(Bytes(8)), at)), at)); break; // BINUNICODE8
                    case (byte)'T': Push(Latin1(Bytes(Length(BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4)), at)))); break; // BINSTRING
                    case (byte)'U': Push(Latin1(Bytes(Byte()))); break; // SHORT_BINSTRING
                    case (byte)'B': Push(Bytes(Length(BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4)), at)).ToArray()); break; // BINBYTES
                    case (byte)'C': Push(Bytes(Byte()).ToArray()); break; // SHORT_BINBYTES
                    case 0x8e: Push(Bytes(Length(BinaryPrimitives.ReadUInt64LittleEndian(Bytes(8)), at)).ToArray()); break; // BINBYTES8
                    case (byte)')': Push(Array.Empty<object?>()); break; // EMPTY_TUPLE
                    case (byte)'t': Push(PopMark(at).ToArray()); break; // TUPLE
                    case 0x85: Push(new[] { Pop(at) }); break; // TUPLE1
                    case 0x86: { var b = Pop(at); var a = Pop(at); Push(new[] { a, b }); break; } // TUPLE2
                    case 0x87: { var c = Pop(at); var b = Pop(at); var a = Pop(at); Push(new[] { a, b, c }); break; } // TUPLE3
                    case (byte)']': Push(new List<object?>()); break; // EMPTY_LIST
                    case (byte)'l': Push(PopMark(at)); break; // LIST
                    case (byte)'a': Append(Peek(at, 1), [Pop(at)], at); break; // APPEND
                    case (byte)'e': { var items = PopMark(at); Append(Peek(at), items, at); break; } // APPENDS
                    case 0x8f: Push(new List<object?>()); break; // EMPTY_SET (as a list)
                    case 0x90: { var items = PopMark(at); Append(Peek(at), items, at); break; } // ADDITEMS
                    case 0x91: Push(PopMark(at)); break; // FROZENSET (as a list)
                    case (byte)'}': Push(new PickleDict()); break; // EMPTY_DICT
                    case (byte)'d': { var dict = new PickleDict(); SetItems(dict, PopMark(at), at); Push(dict); break; } // DICT
                    case (byte)'s': { var value = Pop(at); var key = Pop(at); SetItems(Peek(at), [key, value], at); break; } // SETITEM
                    case (byte)'u': { var items = PopMark(at); SetItems(Peek(at), items, at); break; } // SETITEMS
                    case (byte)'c': Push(new PickleGlobal(Line(at), Line(at))); break; // GLOBAL
                    case 0x93: // STACK_GLOBAL
                    {
                        var name = Pop(at) as string;
                        var module = Pop(at) as string;
                        Push(Global(module, name, at));
                        break;
                    }
                    case (byte)'R': { var args = Pop(at); Push(Call(Pop(at), args, at)); break; } // REDUCE
                    case 0x81: { var args = Pop(at); Push(Call(Pop(at), args, at)); break; } // NEWOBJ (cls.__new__(cls, *args): same data)
                    case 0x92: { Pop(at); var args = Pop(at); Push(Call(Pop(at), args, at)); break; } // NEWOBJ_EX (kwargs dropped)
                    case (byte)'b': { var state = Pop(at); Build(Peek(at), state, at); break; } // BUILD
                    case (byte)'Q': Push(Storage(Pop(at), at)); break; // BINPERSID
                    case (byte)'q': _memo[Byte()] = Peek(at); break; // BINPUT
                    case (byte)'r': _memo[BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4))] = Peek(at); break; // LONG_BINPUT
                    case 0x94: _memo[_memo.Count] = Peek(at); break; // MEMOIZE
                    case (byte)'h': Push(Memo(Byte(), at)); break; // BINGET
                    case (byte)'j': Push(Memo(BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4)), at)); break; // LONG_BINGET
                    default:
                        throw Invalid(at, $"unsupported pickle opcode 0x{opcode:x2} " +
                            "(torch.save writes protocol 2; re-save the file with torch.save)");
                }
            }
        }

        private byte Byte() => _position < input.Length ? input[_position++] : throw Truncated();

        private ReadOnlySpan<byte> Bytes(int count)
        {
            if (count > input.Length - _position)
                throw Truncated();
            var span = input.AsSpan(_position, count);
            _position += count;
            return span;
        }

        // A declared length is only believed when that many bytes follow.
        private int Length(ulong declared, int at) =>
            declared <= (ulong)(input.Length - _position)
                ? (int)declared
                : throw Invalid(at, $"a length of {declared} bytes runs past the end of the pickle");

        private string Line(int at)
        {
            var end = Array.IndexOf(input, (byte)'\n', _position);
            if (end < 0)
                throw Truncated();
            var text = Encoding.UTF8.GetString(input, _position, end - _position);
            _position = end + 1;
            return text.Length is > 0 and <= 256
                ? text
                : throw Invalid(at, "a global's module or name is empty or longer than 256 characters");
        }

        private void Push(object? value) => _stack.Add(value);

        private object? Pop(int at)
        {
            if (_stack.Count == 0 || (_marks.Count > 0 && _marks[^1] == _stack.Count))
                throw Invalid(at, "the pickle pops more than it pushed");
            var value = _stack[^1];
            _stack.RemoveAt(_stack.Count - 1);
            return value;
        }

        private object? Peek(int at, int depth = 0) =>
            _stack.Count > depth ? _stack[_stack.Count - 1 - depth] : throw Invalid(at, "the pickle reads an empty stack");

        private List<object?> PopMark(int at)
        {
            if (_marks.Count == 0)
                throw Invalid(at, "no MARK to pop to");
            var mark = _marks[^1];
            _marks.RemoveAt(_marks.Count - 1);
            var items = _stack.GetRange(mark, _stack.Count - mark);
            _stack.RemoveRange(mark, _stack.Count - mark);
            return items;
        }

        private object? Memo(long key, int at) =>
            _memo.TryGetValue(key, out var value) ? value : throw Invalid(at, $"memo {key} was never stored");

        private static object Long(ReadOnlySpan<byte> littleEndianTwosComplement)
        {
            if (littleEndianTwosComplement.Length == 0)
                return 0L;
            var value = new BigInteger(littleEndianTwosComplement, isUnsigned: false, isBigEndian: false);
            return value >= long.MinValue && value <= long.MaxValue ? (object)(long)value : value;
        }

        private static string Utf8(ReadOnlySpan<byte> bytes, int at)
        {
            try
            {
                return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
            }
            catch (DecoderFallbackException)
            {
                throw Invalid(at, "a string is not valid UTF-8");
            }
        }

        private static string Latin1(ReadOnlySpan<byte> bytes) => Encoding.Latin1.GetString(bytes);

        private static PickleGlobal Global(string? module, string? name, int at) =>
            module is { Length: > 0 and <= 256 } && name is { Length: > 0 and <= 256 }
                ? new PickleGlobal(module, name)
                : throw Invalid(at, "STACK_GLOBAL needs a module and a name");

        private static void Append(object? target, List<object?> items, int at)
        {
            switch (target)
            {
                case List<object?> list:
                    list.AddRange(items);
                    break;
                case PickleObject instance:
                    instance.ListItems.AddRange(items);
                    break;
                default:
                    throw Invalid(at, $"APPEND to a {Describe(target)}");
            }
        }

        private static void SetItems(object? target, List<object?> keysAndValues, int at)
        {
            if (keysAndValues.Count % 2 != 0)
                throw Invalid(at, "a dict has a key without a value");
            var dict = target switch
            {
                PickleDict d => d,
                PickleObject instance => instance.Items,
                _ => throw Invalid(at, $"SETITEM on a {Describe(target)}"),
            };
            for (var i = 0; i < keysAndValues.Count; i += 2)
                dict.Set(keysAndValues[i], keysAndValues[i + 1]);
        }

        private static void Build(object? target, object? state, int at)
        {
            switch (target)
            {
                case PickleObject instance:
                    instance.State = state;
                    break;
                case PickleDict:
                    // An OrderedDict's BUILD carries its __dict__ (torch: the state dict's _metadata versions): not needed.
                    break;
                default:
                    throw Invalid(at, $"BUILD on a {Describe(target)}");
            }
        }

        // REDUCE/NEWOBJ: the few torch callables are interpreted; anything else is recorded, never called.
        private static object Call(object? callable, object? arguments, int at)
        {
            if (callable is not PickleGlobal global)
                throw Invalid(at, $"REDUCE calls a {Describe(callable)}");
            if (arguments is not object?[] args)
                throw Invalid(at, $"REDUCE of {global} without an argument tuple");
            switch (global.Module, global.Name)
            {
                case ("collections", "OrderedDict") or ("builtins", "dict") or ("__builtin__", "dict"):
                    var dict = new PickleDict();
                    if (args is [List<object?> pairs])
                    {
                        foreach (var pair in pairs)
                            SetItems(dict, pair is object?[] { Length: 2 } kv
                                ? [kv[0], kv[1]]
                                : throw Invalid(at, "OrderedDict items are not pairs"), at);
                    }
                    return dict;
                case ("torch._utils", "_rebuild_tensor_v2") or ("torch._utils", "_rebuild_tensor"):
                    return RebuildTensor(global, args, at);
                case ("torch._utils", "_rebuild_parameter") or ("torch._utils", "_rebuild_parameter_with_state"):
                    // A Parameter wraps its tensor; the tensor is what a state dict needs.
                    return args is [TorchTensorRef data, ..] ? data : throw Invalid(at, $"{global} without a tensor");
                default:
                    return new PickleObject(global, args);
            }
        }

        private static TorchTensorRef RebuildTensor(PickleGlobal global, object?[] args, int at)
        {
            if (args is not [TorchStorageRef storage, long offset, object?[] size, object?[] stride, ..])
                throw Invalid(at, $"{global} with arguments torch does not write");
            var shape = Dimensions(size, at);
            var strides = Dimensions(stride, at);
            if (shape.Length != strides.Length || offset < 0 || shape.Any(d => d < 0))
                throw Invalid(at, "a tensor's shape, strides or offset are inconsistent");
            return new TorchTensorRef(storage, offset, shape, strides);
        }

        private static long[] Dimensions(object?[] values, int at) =>
            values.Length <= 64
                ? [.. values.Select(v => v is long n ? n : throw Invalid(at, "a tensor dimension is not an integer"))]
                : throw Invalid(at, "a tensor has more than 64 dimensions");

        private static TorchStorageRef Storage(object? persistentId, int at)
        {
            if (persistentId is not object?[] { Length: 5 } pid || pid[0] is not "storage")
                throw Invalid(at, "a persistent id that is not torch's ('storage', type, key, location, count)");
            if (pid[1] is not PickleGlobal { Module: "torch" } type || !StorageTypes.TryGetValue(type.Name, out var dtype))
                throw Invalid(at, $"unsupported storage type {pid[1]}");
            if (pid[2] is not string { Length: > 0 and <= 64 } key || key.Any(c => !char.IsAsciiLetterOrDigit(c) && c != '_'))
                throw Invalid(at, "a storage key that is not a plain name");
            if (pid[4] is not long count || count < 0)
                throw Invalid(at, "a storage's element count is not a non-negative integer");
            return new TorchStorageRef(key, dtype, count);
        }

        private static string Describe(object? value) => value switch
        {
            null => "None",
            PickleGlobal g => g.ToString(),
            PickleObject o => o.Type.ToString(),
            _ => value.GetType().Name,
        };

        private InvalidDataException Truncated() => new($"The pickle is truncated (it ends at byte {input.Length} without STOP).");

        private static InvalidDataException Invalid(int at, string what) =>
            new(string.Create(CultureInfo.InvariantCulture, $"Not a pickle this platform reads: {what} (at byte {at})."));
    }
}
