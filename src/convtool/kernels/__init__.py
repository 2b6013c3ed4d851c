"""Kernels as data: the kernel value, the built-ins, spec parsing and kernel files."""
