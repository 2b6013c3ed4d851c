"""Byte sizes (``--memory``) and band planning: how many rows a band may have."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from convtool.core.borders import check_fits, output_shape
from convtool.errors import UsageError

if TYPE_CHECKING:
    from convtool.stream.engine import Stage

DEFAULT_MEMORY = 256 * 2**20
"""The band budget when none is given: 256 MiB of image data."""


@dataclass(frozen=True)
class Geometry:
    """Heights and widths of the input and of every stage's output; the halos."""

    heights: tuple[int, ...]
    widths: tuple[int, ...]
    shapes: tuple[tuple[int, int], ...]
    border: str

    @classmethod
    def of(cls, shape: tuple[int, ...], stages: Sequence[Stage], border: str) -> Geometry:
        heights, widths = [shape[0]], [shape[1]]
        for st in stages:
            check_fits(st.shape, (heights[-1], widths[-1]), border)
            h, w = output_shape((heights[-1], widths[-1]), st.shape, border)
            heights.append(h)
            widths.append(w)
        return cls(tuple(heights), tuple(widths), tuple(st.shape for st in stages), border)

    def before(self, s: int) -> int:
        """Rows of the extension above row 0 for stage ``s`` (0-based)."""
        return 0 if self.border == "valid" else self.shapes[s][0] // 2

    def left(self, s: int) -> int:
        return 0 if self.border == "valid" else self.shapes[s][1] // 2


def plan_band_rows(
    shape: tuple[int, ...],
    stages: Sequence[Stage],
    border: str,
    memory: int,
    *,
    channels: int | None = None,
    itemsize: int = 4,
    read_itemsize: int | None = None,
    slack_rows: int = 0,
    row_overhead: int = 0,
    fixed_overhead: int = 0,
) -> int:
    """The band height that keeps one band's image data within ``memory`` bytes.

    Counted per band, each with the halos of every later stage (twice over for ``wrap``, whose
    top band also reads the bottom rows): the source rows as read and prepared
    (``read_itemsize`` bytes per sample, default ``itemsize`` + 1; ``slack_rows`` more rows for
    a reader that decodes whole strips or tiles), each stage's extended band, its result and
    one temporary of that size (the separable pass), the previous band that the caller still
    holds while the next one is computed, all of ``channels`` samples of ``itemsize`` bytes,
    and ``row_overhead`` bytes per output row plus ``fixed_overhead`` bytes for the caller's
    own buffers (e.g. conversion to stored samples, a row of TIFF tiles). Raises UsageError
    when not even one row fits.
    """
    geo = Geometry.of(shape, stages, border)
    c = channels if channels is not None else (shape[2] if len(shape) == 3 else 1)
    read_row = geo.widths[0] * c * (itemsize + 1 if read_itemsize is None else read_itemsize)
    halos = [0] * (len(stages) + 1)  # rows beyond the band at each stage's input
    for s in range(len(stages) - 1, -1, -1):
        halos[s] = halos[s + 1] + stages[s].shape[0] - 1
    if border == "wrap":
        halos = [2 * h for h in halos]
    per_row = read_row + row_overhead + geo.widths[-1] * c * itemsize  # the caller's last band
    fixed = (halos[0] + slack_rows) * read_row + fixed_overhead
    for s, st in enumerate(stages):
        band_row = (geo.widths[s] + st.shape[1] - 1) * c * itemsize
        out_row = 2 * geo.widths[s + 1] * c * itemsize
        per_row += band_row + out_row
        fixed += halos[s] * band_row + halos[s + 1] * out_row
    rows = (memory - fixed) // per_row
    if rows < 1:
        need = fixed + per_row
        raise UsageError(
            f"a memory budget of {format_bytes(memory)} is too small for a "
            f"{'x'.join(map(str, shape))} image with this kernel chain: one row of output with "
            f"its halo of {halos[0]} rows needs {format_bytes(need)}; allow at least that "
            f"(e.g. --memory {format_bytes(need, unit=True)})"
        )
    return int(min(rows, geo.heights[-1]))


_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_bytes(text: str) -> int:
    """``512M``, ``2G``, ``1.5GiB``, ``100000`` → bytes (binary units: K = 1024)."""
    s = str(text).strip().upper().replace(" ", "")
    for suffix in ("IB", "B"):
        if s.endswith(suffix) and len(s) > len(suffix) and s[-len(suffix) - 1] in "KMGT":
            s = s[: -len(suffix)]
            break
    unit = s[-1:] if s[-1:] in "KMGT" else ""
    number = s[: len(s) - len(unit)]
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise UsageError(
            f"memory size {text!r} is not understood; give a positive number of bytes with an "
            "optional unit K, M, G or T (binary: 512M = 512 MiB)"
        )
    return int(value * _UNITS[unit])


def format_bytes(n: float, *, unit: bool = False) -> str:
    """``268435456`` → ``256 MiB`` (``256M`` with ``unit=True``, as ``--memory`` reads it)."""
    for suffix in ("T", "G", "M", "K"):
        size = _UNITS[suffix]
        if n >= size:
            value = math.ceil(n / size * 10) / 10
            text = f"{value:g}"
            return f"{text}{suffix}" if unit else f"{text} {suffix}iB"
    return f"{int(n)}" if unit else f"{int(n)} B"


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo in bytes (Linux), or None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fp:
            for line in fp:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
