namespace Ifcb.Data.Loading;

/// <summary>The seeds of an epoch's randomness: its shuffle, and each image's flips by its position in the epoch.</summary>
internal static class EpochSeeds
{
    /// <summary>Seeds the permutation of epoch <paramref name="epoch"/>.</summary>
    public static int Shuffle(int seed, int epoch) => Mix(seed, epoch, -1);

    /// <summary>Seeds the flips of the image at <paramref name="position"/> of epoch <paramref name="epoch"/>.</summary>
    public static int Image(int seed, int epoch, int position) => Mix(seed, epoch, position);

    // SplitMix64 finaliser: turns (seed, epoch, position) into well-spread, reproducible Random seeds.
    private static int Mix(int seed, int epoch, int position)
    {
        unchecked
        {
            var z = ((ulong)(uint)seed << 32)
                ^ ((ulong)(uint)epoch * 0x9E3779B97F4A7C15UL)
                ^ ((ulong)(uint)position * 0xBF58476D1CE4E5B9UL);
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return (int)(z ^ (z >> 31));
        }
    }
}
