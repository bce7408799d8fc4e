using System.Formats.Tar;
using System.Text;
using Ifcb.Data.Datasets;
using Ifcb.Data.Datasets.Shards;

namespace Ifcb.Data.Tests;

/// <summary>
/// The shard format on its own: a GNU tar written deterministically, its index, and a reader that refuses a damaged,
/// truncated or tampered shard. Python's tarfile (nobody here wrote it) must read what the writer writes.
/// </summary>
public sealed class ShardFormatTests : IDisposable
{
    private readonly string _dir = TestData.TempDirectory();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static List<(string Class, string File, byte[] Content)> Members()
    {
        var pngs = DatasetSpec.FromFolder(TestData.TrainingSample).Images.Take(4).Select(i => File.ReadAllBytes(i.Path)).ToList();
        return
        [
            ("Mesodinium_major", "a.png", pngs[0]),
            ("Mesodinium_major", "b.png", pngs[1]),
            ("Strombidium-like", "empty.png", []),
            // Longer than tar's 100-character name field: written with a GNU long-name entry.
            ("Strombidium-like", new string('x', 150) + ".png", pngs[2]),
            ("a class, with spaces & more", "c.png", pngs[3]),
        ];
    }

    private static (byte[] Shard, ShardIndex Index) Write(IEnumerable<(string Class, string File, byte[] Content)> members)
    {
        using var output = new MemoryStream();
        using var writer = new ShardWriter(output);
        foreach (var (cls, file, content) in members.OrderBy(m => m.Class, StringComparer.Ordinal).ThenBy(m => m.File, StringComparer.Ordinal))
            writer.Add(cls, file, content);
        var index = writer.Complete();
        return (output.ToArray(), index);
    }

    [Fact]
    public void A_shard_round_trips_through_our_reader_by_offset_and_through_python_tarfile()
    {
        var members = Members();
        var (shard, index) = Write(members);
        Assert.Equal(shard.LongLength, index.Bytes);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(shard)), index.Shard);
        var expected = members.ToDictionary(m => $"{m.Class}/{m.File}", m => m.Content);

        // Sequentially, as while downloading.
        var read = ShardReader.ReadAll(new MemoryStream(shard), index).ToList();
        Assert.Equal(members.Count, read.Count);
        foreach (var (member, content) in read)
            Assert.Equal(expected[member.Key], content);

        // By offset, as from a cached shard or a ranged read.
        foreach (var member in index.Members)
            Assert.Equal(expected[member.Key], shard.AsSpan((int)member.Offset, (int)member.Size).ToArray());

        // The index survives JSON and is checked when read back.
        Assert.Equal(index.Members, ShardIndex.Parse(index.ToJson(), index.Shard, "test").Members);

        var path = Path.Combine(_dir, "shard.tar");
        File.WriteAllBytes(path, shard);
        var listing = TestData.RunPython("""
            import hashlib, sys, tarfile
            with tarfile.open(sys.argv[1]) as tar:
                for m in tar.getmembers():
                    print(m.name + "\t" + str(m.size) + "\t" + hashlib.sha256(tar.extractfile(m).read()).hexdigest())
            """, path);
        Assert.Equal(index.Members.Select(m => $"{m.Key}\t{m.Size}\t{m.Sha256}"), listing.Trim().Split('\n'));
    }

    [Fact]
    public void The_same_images_give_the_same_bytes_and_a_changed_image_a_different_shard()
    {
        var members = Members();
        var (first, firstIndex) = Write(members);
        Thread.Sleep(1100); // no clock in the bytes: tar times have whole seconds
        var (second, secondIndex) = Write(members.AsEnumerable().Reverse());
        Assert.Equal(first, second);
        Assert.Equal(firstIndex.Shard, secondIndex.Shard);

        members[1] = (members[1].Class, members[1].File, [.. members[1].Content, 0]);
        Assert.NotEqual(firstIndex.Shard, Write(members).Index.Shard);
    }

    [Fact]
    public void The_writer_refuses_a_member_twice_or_out_of_order()
    {
        using var writer = new ShardWriter(new MemoryStream());
        writer.Add("b", "x.png", [1]);
        Assert.Contains("already in this shard", Assert.Throws<ArgumentException>(() => writer.Add("b", "x.png", [2])).Message);
        Assert.Contains("canonical order", Assert.Throws<ArgumentException>(() => writer.Add("a", "y.png", [3])).Message);
    }

    [Fact]
    public void A_damaged_member_is_refused_naming_it()
    {
        var (shard, index) = Write(Members());
        var victim = index.Members[1];
        shard[victim.Offset + victim.Size / 2] ^= 0xFF;
        var error = Assert.Throws<InvalidDataException>(() => ShardReader.ReadAll(new MemoryStream(shard), index).ToList());
        Assert.Contains(victim.Key, error.Message);
        Assert.Contains("damaged or altered", error.Message);
    }

    [Fact]
    public void A_truncated_shard_is_refused_wherever_it_was_cut()
    {
        var (shard, index) = Write(Members());
        foreach (var cut in new[] { 100, (int)index.Members[1].Offset + 10, (int)index.Members[^1].Offset - 1, shard.Length - 1024 })
        {
            var error = Assert.Throws<InvalidDataException>(() => ShardReader.ReadAll(new MemoryStream(shard[..cut]), index).ToList());
            Assert.True(error.Message.Contains("truncated", StringComparison.Ordinal) || error.Message.Contains("damaged", StringComparison.Ordinal),
                $"cut at {cut}: {error.Message}");
        }
    }

    [Fact]
    public void Duplicate_member_names_are_refused_in_an_index_and_in_a_tar()
    {
        var (_, index) = Write(Members());
        var duplicated = index with { Members = [index.Members[0], index.Members[0] with { Offset = index.Members[1].Offset }] };
        var fromIndex = Assert.Throws<InvalidDataException>(() => ShardIndex.Parse(duplicated.ToJson(), index.Shard, "dup.index.json"));
        Assert.Contains("occurs twice", fromIndex.Message);

        // A tar (written by hand, not by our writer) holding one name twice, read against an index that lists it once.
        using var tarBytes = new MemoryStream();
        using (var tar = new TarWriter(tarBytes, TarEntryFormat.Gnu, leaveOpen: true))
        {
            foreach (var content in new[] { "one", "two" })
                tar.WriteEntry(new GnuTarEntry(TarEntryType.RegularFile, "a/x.png") { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)) });
        }
        var one = Encoding.UTF8.GetBytes("one");
        var single = new ShardIndex
        {
            Shard = new string('0', 64), Bytes = tarBytes.Length,
            Members = [new ShardMember("a", "x.png", 512, one.Length, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(one)))],
        };
        var fromTar = Assert.Throws<InvalidDataException>(() => ShardReader.ReadAll(new MemoryStream(tarBytes.ToArray()), single).ToList());
        Assert.Contains("does not list", fromTar.Message);
    }

    [Fact]
    public void An_index_that_is_not_for_its_shard_or_points_outside_it_is_refused()
    {
        var (_, index) = Write(Members());
        Assert.Contains("not of", Assert.Throws<InvalidDataException>(() => ShardIndex.Parse(index.ToJson(), new string('a', 64), "x")).Message);
        var outside = index with { Members = [.. index.Members.Take(index.Members.Count - 1), index.Members[^1] with { Size = index.Bytes }] };
        Assert.Contains("outside", Assert.Throws<InvalidDataException>(() => ShardIndex.Parse(outside.ToJson(), index.Shard, "x")).Message);
        Assert.Contains("not a shard index", Assert.Throws<InvalidDataException>(() => ShardIndex.Parse("{"u8, index.Shard, "x")).Message);
    }
}
