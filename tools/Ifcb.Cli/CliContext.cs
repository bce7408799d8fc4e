using System.Text.Json;
using System.Text.Json.Serialization;
using Google.Protobuf;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>
/// Where a command writes and what it reads from its surroundings: stdout (tables, progress, JSON), stderr (errors,
/// warnings) and environment variables. Tests pass string writers and a fixed environment.
/// </summary>
public sealed class CliContext
{
    public CliContext(TextWriter output, TextWriter error, Func<string, string?> environment, bool interactive = false)
    {
        Output = output;
        Error = error;
        Environment = environment;
        Console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = interactive ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = interactive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = interactive ? InteractionSupport.Detect : InteractionSupport.No,
        });
        if (!interactive)
            Console.Profile.Width = 160;
    }

    public TextWriter Output { get; }
    public TextWriter Error { get; }
    public Func<string, string?> Environment { get; }

    /// <summary>Tables and progress bars (stdout).</summary>
    public IAnsiConsole Console { get; }

    public static CliContext ForProcess() =>
        new(System.Console.Out, System.Console.Error, System.Environment.GetEnvironmentVariable,
            interactive: !System.Console.IsOutputRedirected);

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    // Proto field names (snake_case) and default values, so scripts can rely on every field being present.
    private static readonly JsonFormatter ProtoJson =
        new(JsonFormatter.Settings.Default.WithFormatDefaultValues(true).WithPreserveProtoFieldNames(true));

    /// <summary>
    /// Writes a value as indented JSON on stdout: protobuf messages (and lists of them) with the proto's field names,
    /// anything else with snake_case names, as the platform's artifacts.
    /// </summary>
    public void WriteJson<T>(T value) => Output.WriteLine(value switch
    {
        IMessage message => ProtoJson.Format(message),
        IEnumerable<IMessage> messages => "[" + string.Join(",\n", messages.Select(m => ProtoJson.Format(m))) + "]",
        _ => JsonSerializer.Serialize(value, Json),
    });

    public void Warn(string message) => Error.WriteLine("warning: " + message);

    public void Info(string message) => Error.WriteLine(message);
}
