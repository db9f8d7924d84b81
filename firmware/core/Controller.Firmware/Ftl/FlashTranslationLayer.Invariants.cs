namespace Controller.Firmware.Ftl;

/// <summary>
/// The FTL's full self-check, for <c>cache.checkInvariants</c> (the cheap checks run where state changes).
/// </summary>
public sealed partial class FlashTranslationLayer
{
    /// <summary>
    /// Checks what the write, trim and GC paths check one entry at a time, over all of it: the
    /// sector map against its reverse map, its valid counts and the unit buffers
    /// (<see cref="SectorMap.CheckInvariants"/>), and the free count against the block states
    /// (<see cref="BlockTable.CheckInvariants"/>).
    /// </summary>
    public void CheckInvariants()
    {
        _sectors.CheckInvariants(_hostBuffer, _coldBuffer);
        _blocks.CheckInvariants();
    }
}
