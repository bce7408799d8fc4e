namespace Ifcb.Training.Engine.Tests;

public class EarlyStoppingTests
{
    /// <summary>Runs the rule over a val_loss series; returns the number of epochs trained and the best epoch.</summary>
    private static (int Epochs, int Best) Simulate(double[] valLosses, int emin, int emax, int estop)
    {
        var stopping = new EarlyStopping(emin, emax, estop);
        for (var epoch = 0; epoch < valLosses.Length; epoch++)
        {
            stopping.Observe(epoch, valLosses[epoch]);
            if (stopping.ShouldStop(epoch))
                return (epoch + 1, stopping.BestEpoch);
        }
        return (valLosses.Length, stopping.BestEpoch);
    }

    [Fact]
    public void Stops_once_patience_is_exhausted_after_the_emin_gate()
    {
        // Best at epoch 1, then no improvement: wait count reaches 2 at epoch 3, but emin=6 delays the stop to epoch 5 (= emin-1).
        double[] losses = [5, 1, 2, 2, 2, 2, 2, 2, 2, 2];
        Assert.Equal((6, 1), Simulate(losses, emin: 6, emax: 10, estop: 2));
    }

    [Fact]
    public void Stops_as_soon_as_patience_runs_out_when_past_emin()
    {
        double[] losses = [5, 4, 3, 3.5, 3.5, 3.5, 1, 1];
        Assert.Equal((6, 2), Simulate(losses, emin: 1, emax: 10, estop: 3));
    }

    [Fact]
    public void Equal_loss_is_not_an_improvement()
    {
        double[] losses = [2, 2, 2, 2];
        Assert.Equal((3, 0), Simulate(losses, emin: 1, emax: 10, estop: 2));
    }

    [Fact]
    public void Estop_zero_disables_early_stopping_and_emax_caps()
    {
        double[] losses = [1, 2, 3, 4, 5, 6, 7, 8];
        Assert.Equal((5, 0), Simulate(losses, emin: 1, emax: 5, estop: 0));
    }
}
