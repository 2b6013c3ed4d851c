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
    "format_kernel",
    "learn_kernel",
    "load_kernel",
    "parse_kernel",
]
