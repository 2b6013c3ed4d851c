"""convtool: filter images with convolution kernels, and learn the kernel behind a filter.

The Python API under the ``convtool`` command. convtool cross-correlates (no kernel flip), as
the textbook, OpenCV's ``filter2D`` and ImageMagick's ``-morphology Correlate`` do; ``convolve``
flips the kernel first.

The names below are loaded on first use (PEP 562), so ``import convtool`` — and the command's
``--help`` — loads neither numpy nor numba; ``from convtool import correlate`` works as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from convtool.errors import ConvtoolError, ImageError, KernelError, LearnError, UsageError

if TYPE_CHECKING:
    from convtool.choices import BORDERS
    from convtool.core.correlate import convolve, correlate
    from convtool.core.layer import convolve_layer, correlate_layer
    from convtool.dask import correlate_dask
    from convtool.filtering.combine import correlate_combined
    from convtool.kernels.builtins import BUILTINS
    from convtool.kernels.compose import compose_kernels
    from convtool.kernels.files import format_kernel, save_kernel
    from convtool.kernels.layer import Layer
    from convtool.kernels.spec import load_any_kernel, load_kernel, parse_kernel
    from convtool.kernels.value import Kernel
    from convtool.learn.fit import LearnResult, learn_kernel

__version__ = "0.1.0"

__all__ = [
    "BORDERS",
    "BUILTINS",
    "ConvtoolError",
    "ImageError",
    "Kernel",
    "KernelError",
    "Layer",
    "LearnError",
    "LearnResult",
    "UsageError",
    "__version__",
    "compose_kernels",
    "convolve",
    "convolve_layer",
    "correlate",
    "correlate_combined",
    "correlate_dask",
    "correlate_layer",
    "format_kernel",
    "learn_kernel",
    "load_any_kernel",
    "load_kernel",
    "parse_kernel",
    "save_kernel",
]

_LAZY = {
    "BORDERS": "convtool.choices",
    "convolve": "convtool.core.correlate",
    "correlate": "convtool.core.correlate",
    "correlate_combined": "convtool.filtering.combine",
    "correlate_dask": "convtool.dask",
    "correlate_layer": "convtool.core.layer",
    "convolve_layer": "convtool.core.layer",
    "compose_kernels": "convtool.kernels.compose",
    "save_kernel": "convtool.kernels.files",
    "BUILTINS": "convtool.kernels.builtins",
    "Kernel": "convtool.kernels.value",
    "Layer": "convtool.kernels.layer",
    "load_any_kernel": "convtool.kernels.spec",
    "format_kernel": "convtool.kernels.files",
    "load_kernel": "convtool.kernels.spec",
    "parse_kernel": "convtool.kernels.spec",
    "LearnResult": "convtool.learn.fit",
    "learn_kernel": "convtool.learn.fit",
}
"""Each lazily loaded name of the API and the module that defines it."""


def __getattr__(name: str) -> object:
    """An API name, imported from its module on first use (``correlate_dask`` loads Dask)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'convtool' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
