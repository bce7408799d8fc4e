// The `ifcb` command line. Everything lives in CliApp so tests can run the same commands in-process.
// Before anything allocates: keep freed tensor memory for the next training step. Verbs that may train or classify
// locally restart the process once with the malloc environment (same PID and exit code), the others just use mallopt.
if (args.Any(a => a is "train" or "run" or "norm"))
    Ifcb.Models.NativeAllocator.ConfigureOrRestart();
else
    Ifcb.Models.NativeAllocator.Configure();
return await Ifcb.Cli.CliApp.RunAsync(args, Ifcb.Cli.CliContext.ForProcess());
