using System.CommandLine;
using Grpc.Core;
using Ifcb.Client;

namespace Ifcb.Cli;

/// <summary>The <c>ifcb</c> command tree and the one place where failures become messages and exit codes.</summary>
public static class CliApp
{
    public static RootCommand BuildRoot(CliContext context)
    {
        var root = new RootCommand(
            "ifcb: train and run IFCB plankton classifiers like neuston_net, on a laptop (local mode) or on the platform (--server).");
        GlobalOptions.AddTo(root);
        root.Subcommands.Add(DatasetCommands.Build(context));
        root.Subcommands.Add(BinsCommands.Build(context));
        root.Subcommands.Add(NormCommand.Build(context));
        root.Subcommands.Add(TrainCommand.Build(context));
        root.Subcommands.Add(SweepCommands.BuildSweep(context));
        root.Subcommands.Add(SweepCommands.BuildSweeps(context));
        root.Subcommands.Add(RunCommand.Build(context));
        root.Subcommands.Add(EvaluateCommand.Build(context));
        root.Subcommands.Add(JobsCommands.Build(context));
        root.Subcommands.Add(ModelsCommands.Build(context));
        root.Subcommands.Add(KeysCommands.Build(context));
        root.Subcommands.Add(WeightsCommands.Build(context));
        root.Subcommands.Add(StatusCommand.Build(context));
        return root;
    }

    public static async Task<int> RunAsync(string[] args, CliContext context, CancellationToken cancellationToken = default)
    {
        var parse = BuildRoot(context).Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
                context.Error.WriteLine("error: " + error.Message);
            context.Error.WriteLine($"See 'ifcb {string.Join(' ', CommandPath(parse))} --help'.");
            return ExitCodes.Usage;
        }
        var invocation = new InvocationConfiguration
        {
            Output = context.Output, Error = context.Error, EnableDefaultExceptionHandler = false,
        };
        return await parse.InvokeAsync(invocation, cancellationToken);
    }

    /// <summary>Sets a command's action, turning any failure into a message on stderr and its exit code.</summary>
    public static void SetHandler(this Command command, CliContext context, Func<ParseResult, CancellationToken, Task<int>> handler) =>
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                return await handler(parse, cancellationToken);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                context.Error.WriteLine("error: " + Describe(e));
                return ExitCodes.FromException(e);
            }
        });

    private static string Describe(Exception e) => e switch
    {
        // Already in words: the service, its address, the call and what to check.
        ServiceCallException named => named.Message,
        RpcException rpc when string.IsNullOrWhiteSpace(rpc.Status.Detail) => $"{rpc.StatusCode} (the server gave no reason).",
        RpcException rpc => $"{rpc.StatusCode}: {rpc.Status.Detail}",
        OperationCanceledException => "interrupted.",
        _ => e.Message,
    };

    private static IEnumerable<string> CommandPath(ParseResult parse)
    {
        var names = new List<string>();
        for (var result = parse.CommandResult; result is not null && result.Command is not RootCommand;
            result = result.Parent as System.CommandLine.Parsing.CommandResult)
            names.Insert(0, result.Command.Name);
        return names;
    }
}
