namespace Ifcb.Training.Engine;

/// <summary>
/// neuston's stopping rule (upstream neuston_net.py:58-59, 98-107): Lightning's EarlyStopping on val_loss (mode min,
/// min_delta 0, strict improvement resets the wait count) whose stop request the Trainer ignores before epoch
/// <c>emin − 1</c> (0-based), plus the hard cap of <c>emax</c> epochs. The "best" epoch is the one with the strictly
/// lowest val_loss.
/// </summary>
public sealed class EarlyStopping(int emin, int emax, int patience)
{
    public double BestValLoss { get; private set; } = double.PositiveInfinity;
    public int BestEpoch { get; private set; } = -1;
    public int WaitCount { get; private set; }

    /// <summary>Restores the state saved with a resume checkpoint.</summary>
    public void Restore(double bestValLoss, int bestEpoch, int waitCount)
    {
        BestValLoss = bestValLoss;
        BestEpoch = bestEpoch;
        WaitCount = waitCount;
    }

    /// <summary>Records epoch <paramref name="epoch"/>'s val_loss; returns true when it is a new best.</summary>
    public bool Observe(int epoch, double valLoss)
    {
        if (valLoss < BestValLoss)
        {
            BestValLoss = valLoss;
            BestEpoch = epoch;
            WaitCount = 0;
            return true;
        }
        WaitCount++;
        return false;
    }

    /// <summary>True when training ends after <paramref name="epoch"/> (0-based), which has just been observed.</summary>
    public bool ShouldStop(int epoch)
    {
        if (epoch + 1 >= emax)
            return true;
        var patienceExhausted = patience > 0 && WaitCount >= patience;
        return patienceExhausted && epoch >= emin - 1;
    }
}
