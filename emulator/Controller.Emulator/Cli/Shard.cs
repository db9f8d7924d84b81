using System.Globalization;
using Controller.Cli;
using Controller.Hosting;

namespace Controller.Emulator.Cli;

/// <summary><c>--shard K/N</c>: this machine's share of a campaign run on N machines.</summary>
internal static class Shard
{
    /// <summary>K and N of <paramref name="shard"/>; (0, 1), the whole campaign, when it is null.</summary>
    public static (ulong Index, ulong Count) Parse(string? shard)
    {
        if (shard is null)
        {
            return (0, 1);
        }

        string[] k = shard.Split('/');
        if (
            k.Length != 2
            || !ulong.TryParse(k[0], NumberStyles.None, CultureInfo.InvariantCulture, out ulong index)
            || !ulong.TryParse(k[1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong count)
            || count == 0
            || index >= count
        )
        {
            throw new UsageException($"--shard: '{shard}' is not K/N with 0 <= K < N, e.g. 0/4");
        }

        return (index, count);
    }
}
