"""``.npy`` headers read before anything is allocated or unpickled (matrices and kernels)."""

from __future__ import annotations

from tokenize import TokenError
from typing import IO

import numpy as np


def read_npy_header(fp: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype a ``.npy`` file declares, with ``fp`` left at the start of its data.

    Raises ValueError, with numpy's reason, when the header is not a valid ``.npy`` header.
    """
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fp)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(fp)
    except (ValueError, OSError, EOFError, SyntaxError, TokenError) as exc:
        raise ValueError(str(exc)) from None
    return tuple(int(n) for n in shape), dtype
