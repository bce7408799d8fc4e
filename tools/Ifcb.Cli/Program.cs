// The `ifcb` command line. Everything lives in CliApp so tests can run the same commands in-process.
// Before anything allocates: keep freed tensor memory for the next training step (see NativeAllocator).
Ifcb.Models.NativeAllocator.Configure();
return await Ifcb.Cli.CliApp.RunAsync(args, Ifcb.Cli.CliContext.ForProcess());
