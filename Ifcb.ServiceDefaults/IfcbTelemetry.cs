namespace Microsoft.Extensions.Hosting;

/// <summary>Naming rules for the platform's own ActivitySources and Meters, so telemetry picks them all up.</summary>
public static class IfcbTelemetry
{
    /// <summary>Every ActivitySource of ours is named "Ifcb.{Area}", e.g. "Ifcb.Training".</summary>
    public const string ActivitySourcePrefix = "Ifcb.";

    /// <summary>Every Meter of ours is named "Ifcb.{Area}", e.g. "Ifcb.Training".</summary>
    public const string MeterPrefix = "Ifcb.";
}
