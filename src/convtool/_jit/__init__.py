"""The numba package: every jitted loop of convtool, its options set once in ``_options``.

It imports nothing else of convtool, and only ``convtool.compiled.core`` imports it (after
choosing a cache directory numba can write to). Functions take arrays, scalars and the typed
named tuples of ``convtool.bundles`` (read by field name: the classes are not imported here),
and read no globals but integer constants. Images arrive as 2-D arrays of shape
(H, W·C) with the C channels interleaved, so one pass over a row serves every channel; a tap at
column offset b is the slice ``row[b·C : b·C + W·C]``, which numba vectorises (an index
computed at run time, ``row[q + b·C]``, is not: numba must allow for it being negative).
Border modes are small ints (``borders``).
"""

from convtool._jit.borders import map_index
from convtool._jit.direct import correlate_direct
from convtool._jit.fft import correlate_fft, fft_kernel_spectrum
from convtool._jit.layer import correlate_layer
from convtool._jit.learn import learn_largest_error, learn_normal_equations, learn_residuals
from convtool._jit.png import png_filter
from convtool._jit.separable import correlate_separable

__all__ = [
    "correlate_direct",
    "correlate_fft",
    "correlate_layer",
    "correlate_separable",
    "fft_kernel_spectrum",
    "learn_largest_error",
    "learn_normal_equations",
    "learn_residuals",
    "map_index",
    "png_filter",
]
