namespace Controller.Firmware.Ftl;

/// <summary>Counts of what the FTL has done, for reports and write amplification.</summary>
public sealed class FtlStatistics
{
    /// <summary>Sectors the host wrote.</summary>
    public long HostSectorsWritten { get; internal set; }

    /// <summary>Sectors the host trimmed that held data.</summary>
    public long SectorsTrimmed { get; internal set; }

    /// <summary>Host sector reads served from NAND (holes and buffered sectors cost no NAND read).</summary>
    public long HostSectorsReadFromNand { get; internal set; }

    /// <summary>Flushes completed.</summary>
    public long Flushes { get; internal set; }

    /// <summary>NAND pages the FTL read, recovery included.</summary>
    public long NandPagesRead { get; internal set; }

    /// <summary>
    /// NAND pages programmed with data, host and relocated (the model's write amplification counts these).
    /// </summary>
    public long DataPagesProgrammed { get; internal set; }

    /// <summary>NAND pages programmed with metadata: journal, checkpoints, superblocks.</summary>
    public long MetadataPagesProgrammed { get; internal set; }

    /// <summary>Units of host data programmed.</summary>
    public long HostUnitsProgrammed { get; internal set; }

    /// <summary>Units of relocated (cold) data programmed.</summary>
    public long ColdUnitsProgrammed { get; internal set; }

    /// <summary>Journal units programmed.</summary>
    public long JournalUnitsProgrammed { get; internal set; }

    /// <summary>Superblock units programmed.</summary>
    public long SuperblockUnitsProgrammed { get; internal set; }

    /// <summary>Blocks erased.</summary>
    public long BlocksErased { get; internal set; }

    /// <summary>Sectors moved by garbage collection and wear levelling.</summary>
    public long SectorsRelocated { get; internal set; }

    /// <summary>Blocks reclaimed by garbage collection.</summary>
    public long GcVictims { get; internal set; }

    /// <summary>Of those, blocks reclaimed while the host waited.</summary>
    public long ForegroundGcVictims { get; internal set; }

    /// <summary>Blocks whose cold data static wear levelling moved.</summary>
    public long WearLevelingMoves { get; internal set; }

    /// <summary>Program failures seen.</summary>
    public long ProgramFailures { get; internal set; }

    /// <summary>Erase failures seen.</summary>
    public long EraseFailures { get; internal set; }

    /// <summary>Blocks retired after a failure.</summary>
    public long GrownBadBlocks { get; internal set; }

    /// <summary>Host reads the NAND could not return intact.</summary>
    public long UnreadableSectors { get; internal set; }

    /// <summary>Sectors lost to the media (unreadable when relocated).</summary>
    public long SectorsLost { get; internal set; }

    /// <summary>Checkpoints written.</summary>
    public long Checkpoints { get; internal set; }

    /// <summary>Formats done.</summary>
    public long Formats { get; internal set; }

    /// <summary>Recoveries done.</summary>
    public long Recoveries { get; internal set; }

    /// <summary>Recoveries that found no valid checkpoint and scanned every block.</summary>
    public long FullScans { get; internal set; }

    internal void CountProgram(UnitKind kind)
    {
        if (kind == UnitKind.Data)
        {
            DataPagesProgrammed++;
        }
        else
        {
            MetadataPagesProgrammed++;
        }
    }
}
