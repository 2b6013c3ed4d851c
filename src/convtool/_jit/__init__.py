"""The numba package: every jitted loop of convtool."""

from convtool._jit.direct import (
    correlate_direct,
    correlate_fft,
    correlate_separable,
    fft_kernel_spectrum,
    learn_largest_error,
    learn_normal_equations,
    learn_residuals,
    map_index,
    png_filter,
)

__all__ = [
    "correlate_direct",
    "correlate_fft",
    "correlate_separable",
    "fft_kernel_spectrum",
    "learn_largest_error",
    "learn_normal_equations",
    "learn_residuals",
    "map_index",
    "png_filter",
]
