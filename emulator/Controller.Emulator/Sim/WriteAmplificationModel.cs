namespace Controller.Emulator.Sim;

/// <summary>
/// Write amplification of greedy garbage collection under uniform random writes (Desnoyers,
/// SYSTOR'12): WA = a / (a + W0(-a e^-a)), a = T/U = 1 / (1 - Sf), W0 the principal branch of
/// Lambert's W.
/// </summary>
public static class WriteAmplificationModel
{
    /// <summary>The model's write amplification at spare factor <paramref name="spareFactor"/>.</summary>
    public static double Greedy(double spareFactor)
    {
        if (spareFactor <= 0 || spareFactor >= 1)
        {
            throw new ArgumentOutOfRangeException(
                nameof(spareFactor),
                spareFactor,
                "a spare factor is between 0 and 1"
            );
        }

        double a = 1 / (1 - spareFactor);
        return a / (a + LambertW0(-a * Math.Exp(-a)));
    }

    /// <summary>W0(x) for x in [-1/e, 0], by Halley's iteration from a branch-point series start.</summary>
    public static double LambertW0(double x)
    {
        double w = x < -0.3 ? -1 + Math.Sqrt(2 * (1 + (Math.E * x))) : x;
        for (int i = 0; i < 64; i++)
        {
            double ew = Math.Exp(w);
            double f = (w * ew) - x;
            double step = f / ((ew * (w + 1)) - ((w + 2) * f / ((2 * w) + 2)));
            w -= step;
            if (Math.Abs(step) < 1e-15)
            {
                break;
            }
        }

        return w;
    }
}
