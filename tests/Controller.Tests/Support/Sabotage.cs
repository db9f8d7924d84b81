using System.Buffers.Binary;
using Controller.Firmware.Cache;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Firmware.Ftl;
using Controller.Firmware.Invariants;

namespace Controller.Tests.Support;

/// <summary>
/// The canaries: deliberately broken surroundings for the shipping firmware, owned by the tests.
/// Each breaks what the firmware relies on at one of its edges (the NAND below the FTL, the store
/// below the cache) in a way that produces a bug the oracles must catch.
/// </summary>
internal static class Sabotage
{
    /// <summary>
    /// A NAND that reports every program complete at once, though it runs for its full time:
    /// FLUSH (and FUA) return before their data is durable, and a power cut tears what was acknowledged.
    /// </summary>
    public static INandDevice EarlyAcknowledgingNand(INandDevice inner) => new EarlyAcknowledging(inner);

    /// <summary>
    /// A NAND that loses the TRIM records of every journal unit as it is programmed (the unit is
    /// programmed, sealed with a valid CRC, with those records made void): recovery never sees a
    /// trim made since the last checkpoint, and brings the trimmed data back.
    /// </summary>
    public static INandDevice TrimForgettingNand(INandDevice inner) => new TrimForgetting(inner);

    /// <summary>
    /// A NAND that erases a garbage-collection or wear-levelling victim as soon as the FTL has read
    /// its data to relocate it, before the relocated copies are durable: a power cut then finds
    /// neither copy. <paramref name="activity"/> says what the FTL is doing at each instant.
    /// </summary>
    public static INandDevice EagerErasingNand(INandDevice inner, Func<FtlActivity> activity) =>
        new EagerErasing(inner, activity);

    /// <summary>
    /// A store that, after a trim inside a large page of <paramref name="sectorsPerPage"/> sectors,
    /// drops the write-back of the page's other sectors until the next flush: the dirty data around
    /// a hole never reaches the FTL, as in a cache whose punch marks the whole page clean.
    /// </summary>
    public static ISectorStore PunchForgettingStore(ISectorStore inner, int sectorsPerPage) =>
        new PunchForgetting(inner, sectorsPerPage);

    /// <summary>The same, in the large pages <paramref name="config"/> gives the cache.</summary>
    public static ISectorStore PunchForgettingStore(ISectorStore inner, ResolvedConfig config) =>
        new PunchForgetting(inner, (int)(config.Get(CacheConfig.LargePageBytes) / FirmwareConfig.SectorBytes));

    /// <summary>
    /// A store that breaks an invariant on the first write into a sector trimmed before: the
    /// firmware's check throws, as a broken rule anywhere in it would.
    /// </summary>
    public static ISectorStore InvariantBreakingStore(ISectorStore inner) => new InvariantBreaking(inner);

    /// <summary>Forwards everything to the device it wraps.</summary>
    private abstract class NandDecorator(INandDevice inner) : INandDevice
    {
        protected INandDevice Inner => inner;

        public NandGeometry Geometry => inner.Geometry;

        public virtual NandCompletion ReadPage(PageAddress address, Span<byte> data, Span<byte> spare) =>
            inner.ReadPage(address, data, spare);

        public virtual NandCompletion ProgramPage(
            PageAddress address,
            ReadOnlySpan<byte> data,
            ReadOnlySpan<byte> spare
        ) => inner.ProgramPage(address, data, spare);

        public virtual NandCompletion EraseBlock(int block) => inner.EraseBlock(block);

        public NandDieStatus GetDieStatus(int die) => inner.GetDieStatus(die);
    }

    private sealed class EarlyAcknowledging(INandDevice inner) : NandDecorator(inner)
    {
        public override NandCompletion ProgramPage(
            PageAddress address,
            ReadOnlySpan<byte> data,
            ReadOnlySpan<byte> spare
        ) => Inner.ProgramPage(address, data, spare) with { CompletesAtNanoseconds = 0 };
    }

    private sealed class TrimForgetting(INandDevice inner) : NandDecorator(inner)
    {
        private readonly uint[] _slots = new uint[new FtlLayout(inner.Geometry).SectorsPerUnit];
        private readonly byte[] _data = new byte[inner.Geometry.PageBytes];
        private readonly byte[] _spare = new byte[inner.Geometry.SpareBytes];

        public override NandCompletion ProgramPage(
            PageAddress address,
            ReadOnlySpan<byte> data,
            ReadOnlySpan<byte> spare
        )
        {
            if (
                !PageMetadata.TryRead(spare, data, _slots, out PageMetadata metadata)
                || metadata.Kind != UnitKind.Journal
            )
            {
                return Inner.ProgramPage(address, data, spare);
            }

            // The unit's records follow one another across its pages; a record's kind (its first
            // four bytes, at a multiple of 8) always lies within one page.
            data.CopyTo(_data);
            long unitOffset = (long)metadata.PageInUnit * _data.Length;
            for (long record = 0; record < metadata.Aux; record++)
            {
                long at = (record * JournalRecord.Bytes) - unitOffset;
                if (
                    at >= 0
                    && at < _data.Length
                    && BinaryPrimitives.ReadUInt32LittleEndian(_data.AsSpan((int)at)) == (uint)JournalRecordKind.Trim
                )
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(_data.AsSpan((int)at), 0);
                }
            }

            metadata.Write(_spare, _slots, _data);
            return Inner.ProgramPage(address, _data, _spare);
        }
    }

    private sealed class EagerErasing(INandDevice inner, Func<FtlActivity> activity) : NandDecorator(inner)
    {
        private readonly HashSet<int> _victims = [];

        public override NandCompletion ReadPage(PageAddress address, Span<byte> data, Span<byte> spare)
        {
            if (activity() is FtlActivity.GarbageCollection or FtlActivity.WearLeveling)
            {
                _victims.Add(address.Block);
            }
            else
            {
                EraseVictims();
            }

            return Inner.ReadPage(address, data, spare);
        }

        public override NandCompletion ProgramPage(
            PageAddress address,
            ReadOnlySpan<byte> data,
            ReadOnlySpan<byte> spare
        )
        {
            EraseVictims();
            return Inner.ProgramPage(address, data, spare);
        }

        public override NandCompletion EraseBlock(int block)
        {
            EraseVictims();
            return Inner.EraseBlock(block);
        }

        /// <summary>Erases the blocks GC read from, once it has moved on (a cut's recovery forgets them).</summary>
        private void EraseVictims()
        {
            FtlActivity now = activity();
            if (now is FtlActivity.GarbageCollection or FtlActivity.WearLeveling || _victims.Count == 0)
            {
                return;
            }

            if (now != FtlActivity.Recovery)
            {
                foreach (int victim in _victims.Order())
                {
                    Inner.EraseBlock(victim);
                }
            }

            _victims.Clear();
        }
    }

    /// <summary>Forwards everything to the store it wraps.</summary>
    private abstract class StoreDecorator(ISectorStore inner) : ISectorStore
    {
        protected ISectorStore Inner => inner;

        public long Sectors => inner.Sectors;

        public FtlReadResult ReadSector(long sector, Span<byte> destination) => inner.ReadSector(sector, destination);

        public virtual void WriteSector(long sector, ReadOnlySpan<byte> data) => inner.WriteSector(sector, data);

        public virtual void TrimSectors(long sector, long count) => inner.TrimSectors(sector, count);

        public virtual void Flush() => inner.Flush();

        public bool IsMapped(long sector) => inner.IsMapped(sector);
    }

    private sealed class PunchForgetting(ISectorStore inner, int sectorsPerPage) : StoreDecorator(inner)
    {
        private readonly HashSet<long> _forgotten = [];

        public override void TrimSectors(long sector, long count)
        {
            Inner.TrimSectors(sector, count);
            long end = sector + count;
            for (long page = sector / sectorsPerPage; page * sectorsPerPage < end; page++)
            {
                long first = page * sectorsPerPage;
                for (long around = first; around < Math.Min(first + sectorsPerPage, Sectors); around++)
                {
                    if (around < sector || around >= end)
                    {
                        _forgotten.Add(around);
                    }
                }
            }
        }

        public override void WriteSector(long sector, ReadOnlySpan<byte> data)
        {
            if (!_forgotten.Contains(sector))
            {
                Inner.WriteSector(sector, data);
            }
        }

        public override void Flush()
        {
            Inner.Flush();
            _forgotten.Clear();
        }
    }

    private sealed class InvariantBreaking(ISectorStore inner) : StoreDecorator(inner)
    {
        private readonly HashSet<long> _trimmed = [];

        public override void TrimSectors(long sector, long count)
        {
            Inner.TrimSectors(sector, count);
            for (long i = sector; i < sector + count; i++)
            {
                _trimmed.Add(i);
            }
        }

        public override void WriteSector(long sector, ReadOnlySpan<byte> data)
        {
            if (_trimmed.Contains(sector))
            {
                Invariant.Broken($"sabotage: the write-back of sector {sector}, trimmed before, breaks an invariant");
            }

            Inner.WriteSector(sector, data);
        }
    }
}
