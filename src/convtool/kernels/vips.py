"""libvips matrix files (``-k @k.mat``), as ``vips conv`` reads them.

The first line is ``WIDTH HEIGHT [SCALE [OFFSET]]``, then HEIGHT rows of WIDTH numbers;
``vips conv`` divides the weighted sum by SCALE (default 1) and adds OFFSET (default 0), in
pixel units. Here SCALE is folded into the weights and OFFSET becomes the kernel's bias in
convtool's [0, 1] units, taken as 8-bit levels (OFFSET / 255), what it means on the 8-bit
images ``vips conv`` is mostly given.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from convtool.errors import KernelError
from convtool.io.matrix import read_number
from convtool.kernels.value import MAX_KERNEL_SIDE, Kernel

EIGHT_BIT = 255.0
"""The level OFFSET is counted in: 8-bit pixel values."""


def load_vips_matrix(path_text: str) -> Kernel:
    """A ``.mat`` file's kernel: weights / SCALE, bias OFFSET / 255."""
    what = f"kernel file {path_text!r}"
    path = Path(path_text).expanduser()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise KernelError(f"{what}: no such file") from None
    except IsADirectoryError:
        raise KernelError(f"{what}: is a directory; give a kernel file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise KernelError(f"{what}: cannot be read as text ({exc})") from None
    return parse_vips_matrix(text, what, path.name)


def parse_vips_matrix(text: str, what: str, name: str = "matrix") -> Kernel:
    """Parse the text of a libvips matrix file (see the module's docstring)."""
    lines = [line.split("#", 1)[0].split() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise KernelError(
            f"{what}: is empty; a libvips matrix starts 'WIDTH HEIGHT [SCALE OFFSET]'"
        )
    header = [_number(t, what, "header") for t in lines[0]]
    if not 2 <= len(header) <= 4:
        raise KernelError(
            f"{what}: the first line {' '.join(lines[0])!r} is not 'WIDTH HEIGHT [SCALE [OFFSET]]'"
        )
    width, height = header[0], header[1]
    if width != int(width) or height != int(height) or min(width, height) < 1:
        raise KernelError(f"{what}: WIDTH and HEIGHT must be whole numbers ≥ 1; got {lines[0]}")
    w, h = int(width), int(height)
    if max(w, h) > MAX_KERNEL_SIDE:
        raise KernelError(f"{what}: is {w}x{h}; the largest side is {MAX_KERNEL_SIDE}")
    scale = header[2] if len(header) > 2 else 1.0
    offset = header[3] if len(header) > 3 else 0.0
    if scale == 0:
        raise KernelError(f"{what}: SCALE is 0; the sum is divided by SCALE, give a non-zero one")
    rows = lines[1:]
    if len(rows) != h or any(len(r) != w for r in rows):
        raise KernelError(
            f"{what}: the header says {w}x{h}; the file has {len(rows)} rows of "
            f"{sorted({len(r) for r in rows})} values"
        )
    weights = np.array([[_number(t, what, "value") for t in r] for r in rows]) / scale
    return Kernel(weights, name, offset / EIGHT_BIT)


def _number(token: str, what: str, part: str) -> float:
    try:
        value = read_number(token)
    except ValueError:
        raise KernelError(f"{what}: {part} {token!r} is not a number") from None
    if not math.isfinite(value):
        raise KernelError(f"{what}: {part} {token!r} is not a finite number")
    return value
