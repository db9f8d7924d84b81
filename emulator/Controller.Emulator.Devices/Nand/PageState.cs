namespace Controller.Emulator.Nand;

/// <summary>
/// What a page of the model physically holds. Stored as one byte per page, with zero meaning
/// erased, so that a new sparse image file starts out fully erased.
/// </summary>
internal enum PageState : byte
{
    /// <summary>Reads FFh; may be programmed.</summary>
    Erased = 0,

    /// <summary>Holds the data last programmed.</summary>
    Programmed = 1,

    /// <summary>A program or erase was interrupted or failed; reads report an uncorrectable error.</summary>
    Torn = 2,

    /// <summary>
    /// Interrupted like <see cref="Torn"/>, but the wrong bits get past ECC: reads succeed with bad data.
    /// </summary>
    TornSilent = 3,
}

/// <summary>Per-block facts of the model that outlive a power cut.</summary>
[Flags]
internal enum BlockFlags : byte
{
    /// <summary>An ordinary block.</summary>
    None = 0,

    /// <summary>
    /// Marked bad at the factory (a non-FFh marker in the spare area of page 0); programs and erases fail.
    /// </summary>
    FactoryBad = 1,
}
