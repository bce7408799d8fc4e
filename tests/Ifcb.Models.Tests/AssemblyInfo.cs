// The models are large and libtorch already uses every core: running test classes side by side only multiplies memory.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
