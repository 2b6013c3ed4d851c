"""convtool: filter images with convolution kernels, and learn the kernel behind a filter.

The Python API under the ``convtool`` command. convtool cross-correlates (no kernel flip), as
the textbook, OpenCV's ``filter2D`` and ImageMagick's ``-morphology Correlate`` do; ``convolve``
flips the kernel first.
"""

from convtool.correlate import BORDERS, convolve, correlate
from convtool.errors import ConvtoolError, ImageError, KernelError, LearnError, UsageError
from convtool.kernels import BUILTINS, Kernel, format_kernel, load_kernel, parse_kernel
from convtool.learn import LearnResult, learn_kernel

__version__ = "0.1.0"

__all__ = [
    "BORDERS",
    "BUILTINS",
    "ConvtoolError",
    "ImageError",
    "Kernel",
    "KernelError",
    "LearnError",
    "LearnResult",
    "UsageError",
    "__version__",
    "convolve",
    "correlate",
    "correlate_dask",
    "format_kernel",
    "learn_kernel",
    "load_kernel",
    "parse_kernel",
]


def __getattr__(name: str) -> object:
    """``convtool.correlate_dask``, loaded on first use: ``import convtool`` never loads Dask."""
    if name == "correlate_dask":
        from convtool.distributed import correlate_dask

        return correlate_dask
    raise AttributeError(f"module 'convtool' has no attribute {name!r}")
