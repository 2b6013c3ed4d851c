"""Integer output in numpy: the twin of ``convtool._jit.integer``."""

from __future__ import annotations

from typing import Any

import numpy as np


def to_integer(acc: np.ndarray, bias: Any, absolute: bool, top: Any) -> np.ndarray:
    """``_jit.integer.to_integer`` in the float type of ``acc`` (``bias``, ``top`` of that type)."""
    t = acc + bias
    t = np.abs(t) if absolute else np.maximum(t, t.dtype.type(0))
    return np.rint(np.minimum(t, top))
