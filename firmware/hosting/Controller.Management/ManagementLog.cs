using System.Globalization;
using System.Threading.Channels;

namespace Controller.Management;

/// <summary>
/// The server's log: each line goes to the server's own output and to every <c>log</c> channel
/// open at the time. A slow reader loses its oldest lines rather than holding the server up.
/// </summary>
public sealed class ManagementLog
{
    private const int LinesKeptPerReader = 1024;
    private readonly TextWriter? _output;
    private readonly Lock _lock = new();
    private readonly List<Channel<string>> _readers = [];

    /// <summary>A log that also writes to <paramref name="output"/> (null: channels only).</summary>
    public ManagementLog(TextWriter? output)
    {
        _output = output;
    }

    /// <summary>Logs <paramref name="message"/>, stamped with the UTC time.</summary>
    public void Write(string message)
    {
        string line = $"{DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)} {message}";
        lock (_lock)
        {
            _output?.WriteLine(message);
            foreach (Channel<string> reader in _readers)
            {
                reader.Writer.TryWrite(line);
            }
        }
    }

    /// <summary>Lines logged from now on, until <paramref name="cancellationToken"/> is cancelled.</summary>
    public async IAsyncEnumerable<string> FollowAsync(
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken
    )
    {
        Channel<string> reader = Channel.CreateBounded<string>(
            new BoundedChannelOptions(LinesKeptPerReader)
            {
                FullMode = BoundedChannelFullMode.DropOldest,
                SingleReader = true,
            }
        );
        lock (_lock)
        {
            _readers.Add(reader);
        }

        try
        {
            await foreach (string line in reader.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return line;
            }
        }
        finally
        {
            lock (_lock)
            {
                _readers.Remove(reader);
            }
        }
    }
}
