using System.Numerics;
using Controller.Common;
using Controller.Firmware.Config;
using Controller.Firmware.Invariants;

namespace Controller.Firmware.Cache;

/// <summary>
/// The DRAM cache of large pages. One arena, carved by a <see cref="BuddyAllocator"/> into frames
/// from one sector up to a large page. A cached large page (an entry) keeps per-sector valid,
/// dirty and hole bits, and a chain of frames that give its sectors memory: normally one large
/// frame, several smaller ones after a split, a migration, or when fragmentation denied a large
/// frame. Host byte ranges are served at 512-byte granularity; a partial sector is read from the
/// store before it is written.
/// </summary>
public sealed partial class LargePageCache
{
    private const int SectorBytes = FirmwareConfig.SectorBytes;
    private const int None = -1;

    private readonly ISectorStore _store;
    private readonly IClock? _clock;
    private long _readsDoneAt;
    private readonly CacheOptions _options;
    private readonly byte[] _arena;
    private readonly BuddyAllocator _buddy;
    private readonly int _sectorsPerPage;
    private readonly int _maxOrder;
    private readonly int _words;
    private readonly Dictionary<long, int> _entries;

    // Entries (cached large pages), indexed by entry slot.
    private readonly long[] _entryPage;
    private readonly int[] _entryHead;
    private readonly ulong[] _valid;
    private readonly DirtyMap _dirty;
    private readonly ulong[] _hole;
    private readonly bool[] _referenced;
    private readonly int[] _lruPrevious;
    private readonly int[] _lruNext;
    private readonly int[] _freeEntries;
    private int _freeEntryCount;
    private int _lruHead = None;
    private int _lruTail = None;
    private int _clockHand;

    // Frame descriptors, indexed by descriptor slot.
    private readonly int[] _frameUnit;
    private readonly byte[] _frameOrder;
    private readonly int[] _frameFirst;
    private readonly int[] _frameNext;
    private readonly int[] _freeFrames;
    private int _freeFrameCount;
    private readonly byte[] _bounce = new byte[SectorBytes];
    private int _pinned = None;

    /// <summary>
    /// Creates a cache over <paramref name="store"/> with the arena and policies of
    /// <paramref name="options"/>. DRAM copies and fills are charged on <paramref name="clock"/>
    /// at <see cref="CacheOptions.DramNanosecondsPerKib"/> when one is given.
    /// </summary>
    public LargePageCache(ISectorStore store, CacheOptions options, IClock? clock = null)
    {
        _store = store ?? throw new ArgumentNullException(nameof(store));
        _clock = clock;
        _options = options ?? throw new ArgumentNullException(nameof(options));
        if (
            !BitOperations.IsPow2(options.LargePageBytes)
            || options.LargePageBytes < SectorBytes
            || options.Bytes % options.LargePageBytes != 0
        )
        {
            throw new ArgumentException(
                $"an arena of {options.Bytes} bytes is not a whole number of large pages of {options.LargePageBytes} bytes",
                nameof(options)
            );
        }

        _sectorsPerPage = options.LargePageBytes / SectorBytes;
        _maxOrder = BitOperations.Log2((uint)_sectorsPerPage);
        _words = (_sectorsPerPage + 63) / 64;
        int units = checked((int)(options.Bytes / SectorBytes));
        _arena = new byte[options.Bytes];
        _buddy = new BuddyAllocator(units, _maxOrder);

        // Frame descriptors are bounded, as a controller's frame table is: enough for every large
        // page, and for a quarter of them split into sectors. A split that needs more falls back.
        int largePages = units >> _maxOrder;
        int descriptors = largePages + Math.Max(largePages / 4 * _sectorsPerPage, 64);
        _frameUnit = new int[descriptors];
        _frameOrder = new byte[descriptors];
        _frameFirst = new int[descriptors];
        _frameNext = new int[descriptors];
        _freeFrames = [.. Enumerable.Range(0, descriptors).Reverse()];
        _freeFrameCount = descriptors;
        int entries = descriptors;
        _entryPage = new long[entries];
        _entryHead = new int[entries];
        _valid = new ulong[entries * _words];
        _dirty = new DirtyMap(entries, _words, ordered: options.DirtyExpireNanoseconds > 0);
        _hole = new ulong[entries * _words];
        _referenced = new bool[entries];
        _lruPrevious = new int[entries];
        _lruNext = new int[entries];
        _freeEntries = [.. Enumerable.Range(0, entries).Reverse()];
        _freeEntryCount = entries;
        _entries = new Dictionary<long, int>(entries);
        Capacity = new(units, descriptors);
    }

    /// <summary>The arena in sectors and the frame descriptors available.</summary>
    public (int Sectors, int FrameDescriptors) Capacity { get; }

    /// <summary>Counts of what the cache has done.</summary>
    public CacheStatistics Statistics { get; } = new();

    /// <summary>Sectors the arena holds allocated right now.</summary>
    public int SectorsHeld => _buddy.Units - _buddy.FreeUnits;

    /// <summary>Sectors holding data not yet written back.</summary>
    public int DirtySectors => _dirty.Count;

    /// <summary>
    /// Sectors of cached pages that read as holes because they were punched while cached. Walks the cache: for reports.
    /// </summary>
    public int HoleSectors
    {
        get
        {
            int count = 0;
            foreach (int entry in _entries.Values)
            {
                for (int word = 0; word < _words; word++)
                {
                    count += BitOperations.PopCount(_hole[(entry * _words) + word]);
                }
            }

            return count;
        }
    }

    /// <summary>Large pages cached.</summary>
    public int PagesCached => _entries.Count;

    /// <summary>
    /// True when the full checks (<see cref="CheckInvariants"/>) are to run after every command
    /// (<c>cache.checkInvariants</c>).
    /// </summary>
    public bool ChecksInvariants => _options.CheckInvariants;

    /// <summary>The store's size in bytes: the device as the host sees it.</summary>
    public long DeviceBytes => _store.Sectors * SectorBytes;

    /// <summary>
    /// Reads <paramref name="destination"/>.Length bytes from <paramref name="offset"/>. A miss on a
    /// page with a large frame fills every sector of the page not yet valid. Returns false if the
    /// store could not return a sector intact.
    /// </summary>
    public bool Read(long offset, Span<byte> destination)
    {
        CheckRange(offset, destination.Length);
        _readsDoneAt = 0;
        bool ok = true;
        while (destination.Length > 0)
        {
            long sector = offset / SectorBytes;
            int within = (int)(offset % SectorBytes);
            int length = Math.Min(destination.Length, SectorBytes - within);
            try
            {
                ok &= ReadSector(sector, within, destination[..length]);
            }
            catch (Ftl.FtlException)
            {
                // No room, and none can be made: the pages to evict are dirty and the store has
                // no space left to write them back (a device at the end of its life). The sector
                // is not in the cache (or it would not need room), so it is read past it.
                Unpin();
                DropIfEmpty(sector / _sectorsPerPage);
                Statistics.ReadsPastTheCache++;
                ok &= NoteRead(_store.ReadSector(sector, _bounce));
                _bounce.AsSpan(within, length).CopyTo(destination);
            }

            destination = destination[length..];
            offset += length;
        }

        WaitForReads();
        return ok;
    }

    /// <summary>Reads bytes of one sector through the cache, filling it on a miss.</summary>
    private bool ReadSector(long sector, int within, Span<byte> destination)
    {
        bool ok = true;
        int entry = Touch(sector / _sectorsPerPage);
        int index = (int)(sector % _sectorsPerPage);
        if (IsSet(_valid, entry, index))
        {
            Statistics.SectorHits++;
        }
        else
        {
            Statistics.SectorMisses++;
            ok = Fill(entry, index);
        }

        SectorSpan(entry, index).Slice(within, destination.Length).CopyTo(destination);
        ChargeDram(destination.Length);
        Unpin();
        return ok;
    }

    /// <summary>Forgets the entry of <paramref name="page"/> if it was made but got no memory.</summary>
    private void DropIfEmpty(long page)
    {
        if (_entries.TryGetValue(page, out int entry) && _entryHead[entry] == None)
        {
            DropEntry(entry);
        }
    }

    /// <summary>
    /// Writes <paramref name="data"/> at <paramref name="offset"/>: visible to reads at once. With
    /// <paramref name="forceUnitAccess"/>, the sectors written are durable before this returns.
    /// Returns false if a partial sector could not be read first.
    /// </summary>
    public bool Write(long offset, ReadOnlySpan<byte> data, bool forceUnitAccess)
    {
        CheckRange(offset, data.Length);
        _readsDoneAt = 0;
        long first = offset / SectorBytes;
        long end = (offset + data.Length + SectorBytes - 1) / SectorBytes;
        bool ok = true;
        while (data.Length > 0)
        {
            long sector = offset / SectorBytes;
            int within = (int)(offset % SectorBytes);
            int length = Math.Min(data.Length, SectorBytes - within);
            ok &= WriteSector(sector, within, data[..length]);
            data = data[length..];
            offset += length;
        }

        WaitForReads();
        if (forceUnitAccess)
        {
            MakeDurable(first * SectorBytes, (end - first) * SectorBytes);
        }

        return ok;
    }

    /// <summary>
    /// FUA: writes back the dirty sectors the byte range touches and flushes the store, so what a
    /// command did to the range (data written, a hole punched, zeros) is durable when it returns.
    /// </summary>
    private void MakeDurable(long offset, long length)
    {
        WriteBack(offset / SectorBytes, (offset + length + SectorBytes - 1) / SectorBytes);
        _store.Flush();
    }

    /// <summary>
    /// Writes back every dirty sector, then flushes the store: everything written or trimmed before is durable.
    /// </summary>
    public void Flush()
    {
        WriteBack(0, _store.Sectors);
        _store.Flush();
        Statistics.Flushes++;
    }

    private bool WriteSector(long sector, int within, ReadOnlySpan<byte> bytes)
    {
        int entry = Touch(sector / _sectorsPerPage);
        int index = (int)(sector % _sectorsPerPage);
        bool ok = true;
        if (bytes.Length < SectorBytes && !IsSet(_valid, entry, index))
        {
            // A partial sector: the rest of it must come from the store first.
            Statistics.ReadsBeforePartialWrite++;
            ok = FillSector(entry, index);
        }
        else
        {
            EnsureFrame(entry, index);
        }

        bytes.CopyTo(SectorSpan(entry, index)[within..]);
        ChargeDram(bytes.Length);
        bool wasHole = IsSet(_hole, entry, index);
        Set(_valid, entry, index);
        Clear(_hole, entry, index);
        MarkDirty(entry, index);
        CheckWrittenSectorDirty(entry, index, sector, wasHole);

        Statistics.SectorsWritten++;
        Unpin();
        return ok;
    }

    /// <summary>
    /// Makes a sector valid from the store. If the page has a large frame, fills every invalid
    /// sector of it (a read miss fills the large page); otherwise just this one.
    /// </summary>
    private bool Fill(int entry, int index)
    {
        EnsureFrame(entry, index);
        int head = _entryHead[entry];
        if (head == None || _frameOrder[head] != _maxOrder || _frameNext[head] != None)
        {
            return FillSector(entry, index);
        }

        // The last large page may run past the end of the device: only its sectors inside are filled.
        bool ok = true;
        long inside = Math.Min(_sectorsPerPage, _store.Sectors - (_entryPage[entry] * _sectorsPerPage));
        for (int s = 0; s < inside; s++)
        {
            if (!IsSet(_valid, entry, s))
            {
                ok &= FillSector(entry, s);
            }
        }

        return ok;
    }

    private bool FillSector(int entry, int index)
    {
        EnsureFrame(entry, index);
        Span<byte> target = SectorSpan(entry, index);
        bool ok = NoteRead(_store.ReadSector((_entryPage[entry] * _sectorsPerPage) + index, target));
        Statistics.SectorsFilled++;
        Set(_valid, entry, index);
        Clear(_hole, entry, index);
        return ok;
    }

    /// <summary>
    /// True when <paramref name="sector"/> is a hole: it reads as zeros because it was never
    /// written, or was trimmed or zeroed with a hole since. A dirty sector is data not yet in the
    /// store, and a punched one a hole; a clean one is what the store holds, so the store says.
    /// Nothing is read or changed.
    /// </summary>
    public bool IsHole(long sector)
    {
        if (_entries.TryGetValue(sector / _sectorsPerPage, out int entry))
        {
            int index = (int)(sector % _sectorsPerPage);
            if (_dirty.IsDirty(entry, index))
            {
                return false;
            }

            if (IsSet(_hole, entry, index))
            {
                return true;
            }
        }

        return !_store.IsMapped(sector);
    }

    /// <summary>
    /// The entry of a large page, made if needed, marked used and pinned against eviction until <see cref="Unpin"/>.
    /// </summary>
    private int Touch(long page)
    {
        if (!_entries.TryGetValue(page, out int entry))
        {
            entry = NewEntry(page);
        }

        _referenced[entry] = true;
        MoveToLruFront(entry);
        _pinned = entry;
        return entry;
    }

    private void Unpin() => _pinned = None;

    /// <summary>
    /// The frames holding a cached page, as (first sector, sectors), in sector order; empty when it is not cached. For
    /// tests.
    /// </summary>
    internal IReadOnlyList<(int First, int Sectors)> FramesOf(long page)
    {
        var frames = new List<(int First, int Sectors)>();
        if (_entries.TryGetValue(page, out int entry))
        {
            for (int frame = _entryHead[entry]; frame != None; frame = _frameNext[frame])
            {
                frames.Add((_frameFirst[frame], 1 << _frameOrder[frame]));
            }
        }

        frames.Sort();
        return frames;
    }

    /// <summary>True when <paramref name="page"/> is cached. For tests.</summary>
    internal bool IsCached(long page) => _entries.ContainsKey(page);

    /// <summary>
    /// The 4 KiB of arena memory holding sector <paramref name="index"/> of an entry; the frame must exist.
    /// </summary>
    private Span<byte> SectorSpan(int entry, int index)
    {
        int frame = FrameOf(entry, index);
        Invariant.Holds(frame != None, "a sector in use has a frame");
        long byteOffset = ((long)_frameUnit[frame] + index - _frameFirst[frame]) * SectorBytes;
        return _arena.AsSpan((int)byteOffset, SectorBytes);
    }

    private int FrameOf(int entry, int index)
    {
        for (int frame = _entryHead[entry]; frame != None; frame = _frameNext[frame])
        {
            if (index >= _frameFirst[frame] && index < _frameFirst[frame] + (1 << _frameOrder[frame]))
            {
                return frame;
            }
        }

        return None;
    }

    /// <summary>
    /// Notes when the flash is done with a read of the store, and returns whether it was intact.
    /// The reads of one command are all issued before any is waited for, so a fill of a large page
    /// reads the dies that hold it in parallel.
    /// </summary>
    private bool NoteRead(Ftl.FtlReadResult read)
    {
        _readsDoneAt = Math.Max(_readsDoneAt, read.CompletesAtNanoseconds);
        return read.Ok;
    }

    /// <summary>
    /// The command's data is in place once the store's reads are done: its time moves on to then.
    /// (A command waits only for its own reads: <see cref="Read"/> and <see cref="Write"/> start the count afresh.)
    /// </summary>
    private void WaitForReads()
    {
        _clock?.WaitUntil(_readsDoneAt);
    }

    /// <summary>
    /// Advances the clock by the time the controller spends moving <paramref name="bytes"/> bytes of DRAM.
    /// </summary>
    private void ChargeDram(long bytes)
    {
        if (_clock is not null && _options.DramNanosecondsPerKib > 0)
        {
            _clock.WaitUntil(_clock.NowNanoseconds + (long)(bytes * _options.DramNanosecondsPerKib / 1024));
        }
    }

    /// <summary>
    /// The seed's rule, checked in every build after every sector written: a write (into a punched
    /// hole above all) leaves its sector dirty, so it is written back whatever the page goes through.
    /// </summary>
    private void CheckWrittenSectorDirty(int entry, int index, long sector, bool wasHole)
    {
        if (!_dirty.IsDirty(entry, index))
        {
            Invariant.Broken(
                $"a write into {(wasHole ? "the punched hole at " : string.Empty)}sector {sector} did not dirty its page"
            );
        }
    }

    private void MarkDirty(int entry, int index) => _dirty.Mark(entry, index, _clock?.NowNanoseconds ?? 0);

    private void MarkClean(int entry, int index) => _dirty.Clean(entry, index);

    /// <summary>
    /// When the oldest dirty large page expires (<see cref="CacheOptions.DirtyExpireNanoseconds"/>
    /// after it went dirty), on the cache's clock; null with no dirty page, or with expiry off.
    /// </summary>
    public long? DirtyExpiresAtNanoseconds
    {
        get
        {
            if (_options.DirtyExpireNanoseconds <= 0 || _clock is null)
            {
                return null;
            }

            return _dirty.OldestSince() is { } since ? since + _options.DirtyExpireNanoseconds : null;
        }
    }

    /// <summary>
    /// Background write-back of expired dirty data: the large pages dirty for longer than the
    /// expiry at <paramref name="nowNanoseconds"/>, oldest first, at most
    /// <paramref name="maximumPages"/> of them; once none is left expired, the store is flushed so
    /// what was written back is on the NAND. Returns the sectors written back.
    /// </summary>
    public int WriteBackExpired(long nowNanoseconds, int maximumPages)
    {
        int sectors = 0;
        for (
            int pages = 0;
            pages < maximumPages && DirtyExpiresAtNanoseconds is { } expires && expires <= nowNanoseconds;
            pages++
        )
        {
            int entry = _dirty.TakeOldest();
            int before = _dirty.Count;
            WriteBackEntry(entry);
            sectors += before - _dirty.Count;
        }

        if (!(DirtyExpiresAtNanoseconds <= nowNanoseconds))
        {
            _store.Flush();
        }

        Statistics.SectorsExpired += sectors;
        return sectors;
    }

    private bool IsSet(ulong[] bits, int entry, int index) =>
        (bits[(entry * _words) + (index >> 6)] & (1UL << index)) != 0;

    private void Set(ulong[] bits, int entry, int index) => bits[(entry * _words) + (index >> 6)] |= 1UL << index;

    private void Clear(ulong[] bits, int entry, int index) => bits[(entry * _words) + (index >> 6)] &= ~(1UL << index);

    private void CheckRange(long offset, int length)
    {
        if (offset < 0 || length < 0 || length > DeviceBytes || offset > DeviceBytes - length)
        {
            throw new ArgumentOutOfRangeException(
                nameof(offset),
                offset,
                $"bytes {offset}..{offset + length} are outside the device's {DeviceBytes} bytes"
            );
        }
    }
}

/// <summary>
/// Counts of what the cache has done, for the trim-policy comparison. One cache counts from its
/// power-on; <see cref="Plus"/> adds the counts of caches before it (each boot makes a new cache),
/// so a run's or a server's totals survive power cuts.
/// </summary>
public sealed class CacheStatistics
{
    /// <summary>These counts and <paramref name="other"/>'s added together.</summary>
    public CacheStatistics Plus(CacheStatistics other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return new CacheStatistics
        {
            SectorHits = SectorHits + other.SectorHits,
            SectorMisses = SectorMisses + other.SectorMisses,
            SectorsFilled = SectorsFilled + other.SectorsFilled,
            SectorsWritten = SectorsWritten + other.SectorsWritten,
            ReadsBeforePartialWrite = ReadsBeforePartialWrite + other.ReadsBeforePartialWrite,
            SectorsWrittenBack = SectorsWrittenBack + other.SectorsWrittenBack,
            SectorsExpired = SectorsExpired + other.SectorsExpired,
            Evictions = Evictions + other.Evictions,
            LargeFrameFallbacks = LargeFrameFallbacks + other.LargeFrameFallbacks,
            PartialPagePunches = PartialPagePunches + other.PartialPagePunches,
            SplitFallbacks = SplitFallbacks + other.SplitFallbacks,
            MigrateFallbacks = MigrateFallbacks + other.MigrateFallbacks,
            CleanPagesReclaimed = CleanPagesReclaimed + other.CleanPagesReclaimed,
            BytesMigrated = BytesMigrated + other.BytesMigrated,
            BytesZeroed = BytesZeroed + other.BytesZeroed,
            Flushes = Flushes + other.Flushes,
            ReadsPastTheCache = ReadsPastTheCache + other.ReadsPastTheCache,
        };
    }

    /// <summary>Sectors read that were valid in the cache.</summary>
    public long SectorHits { get; internal set; }

    /// <summary>Sectors read that had to be filled.</summary>
    public long SectorMisses { get; internal set; }

    /// <summary>Sectors filled from the store (a miss on a large page fills all its invalid sectors).</summary>
    public long SectorsFilled { get; internal set; }

    /// <summary>Sectors written by the host.</summary>
    public long SectorsWritten { get; internal set; }

    /// <summary>Partial-sector writes that read the sector first.</summary>
    public long ReadsBeforePartialWrite { get; internal set; }

    /// <summary>Dirty sectors written back to the store.</summary>
    public long SectorsWrittenBack { get; internal set; }

    /// <summary>
    /// Of those, the sectors written back in the background because they were dirty for longer than the expiry.
    /// </summary>
    public long SectorsExpired { get; internal set; }

    /// <summary>Large pages dropped to make room.</summary>
    public long Evictions { get; internal set; }

    /// <summary>Large frames denied by fragmentation, served by sector frames instead.</summary>
    public long LargeFrameFallbacks { get; internal set; }

    /// <summary>TRIMs that covered part of a cached large page.</summary>
    public long PartialPagePunches { get; internal set; }

    /// <summary>Splits that could not get the frames they needed and kept the large page with holes.</summary>
    public long SplitFallbacks { get; internal set; }

    /// <summary>Migrations that could not get lower-order frames and kept the large page with holes.</summary>
    public long MigrateFallbacks { get; internal set; }

    /// <summary>Clean pages dropped to give migration the frames it needed.</summary>
    public long CleanPagesReclaimed { get; internal set; }

    /// <summary>Bytes copied between frames by migration.</summary>
    public long BytesMigrated { get; internal set; }

    /// <summary>Bytes zeroed in place by TRIMs.</summary>
    public long BytesZeroed { get; internal set; }

    /// <summary>Flushes done.</summary>
    public long Flushes { get; internal set; }

    /// <summary>
    /// Sectors read past the cache because no room could be made (the store had no space to write dirty pages back).
    /// </summary>
    public long ReadsPastTheCache { get; internal set; }
}
