"""Root pytest configuration (the package's doctests and tests/ alike)."""

collect_ignore = [
    # imports triton, which must not happen before the triton backend chooses Triton's interpreter on machines
    # without a GPU; the backend's doctest and tests/test_scale.py exercise the kernel
    "meanfield/kernels/_triton_kernel.py",
    # a script that writes the format-version-1 files (run by hand at an old commit), not a module to import
    "tests/data/make_v1_files.py",
]
