"""The typed named tuples that convtool's jitted code (``convtool._jit``) and its numpy twins
(``convtool.twins``) take instead of long lists of arrays and scalars.

numba types each as a tuple of its fields' types, so that a field that is None (the float or
the integer output) selects the code compiled for it. This module imports nothing: the numba
package reads the fields by name and never needs the classes.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Geometry(NamedTuple):
    """The image's channels (interleaved along its rows), the kernel's size, and the rows and
    columns the border adds before the image (kh//2, kw//2; none for ``valid``)."""

    channels: int
    kh: int
    kw: int
    ph: int
    pw: int


class Border(NamedTuple):
    """How the image is extended: a border code (``choices.BORDER_CODES``) and the value of
    ``constant`` in the float type of the computation."""

    mode: int
    cval: Any


class Output(NamedTuple):
    """Where a path writes: the float rows ``out`` or the integer rows ``iout`` (the other one
    None), and for integer output clamp(round-half-even(sum + bias, or its absolute value), 0,
    top), ``bias`` and ``top`` in the float type of the computation."""

    out: Any
    iout: Any
    bias: Any
    absolute: bool
    top: Any


class DirectTaps(NamedTuple):
    """The direct path's kernel: ``kern`` (kh, kw); for a pair of output rows, source row
    ``tj``, element offset ``tb`` and weights ``tw`` (upper row), ``tv`` (lower row); for a
    single row ``sj``, ``sb``, ``sw``."""

    kern: Any
    tj: Any
    tb: Any
    tw: Any
    tv: Any
    sj: Any
    sb: Any
    sw: Any


class SeparableTaps(NamedTuple):
    """The separable path's factors K = u vᵀ: along the rows, element offsets ``hb`` and
    weights ``hw`` (v); down the columns, for a pair of output rows, ring rows ``vj`` and weights
    ``vw`` (upper row), ``vv`` (lower row); for a single row ``sj``, ``sw``; and ``hcval``, a row
    of cval filtered along the row (cval·Σv)."""

    hb: Any
    hw: Any
    vj: Any
    vw: Any
    vv: Any
    sj: Any
    sw: Any
    hcval: Any


class Spectrum(NamedTuple):
    """The FFT path's transform: the kernel's spectrum ``kre + i·kim`` and the twiddle tables
    (cos, sin of 2πk/n) of both axes."""

    kre: Any
    kim: Any
    c0: Any
    s0: Any
    c1: Any
    s1: Any


class Extension(NamedTuple):
    """The FFT path's extended image: the source row ``rmap`` and column ``cmap`` of each of its
    positions (−1: ``cval``)."""

    rmap: Any
    cmap: Any
    cval: Any


class LearnPair(NamedTuple):
    """One pair as learn's passes read it: the input ``src`` (H, W·C) with ``channels``
    interleaved, the ``target`` rows, the offset (``oy``, ``ox``) of the target sample that the
    input's first valid output is compared with, and the open interval (``lo``, ``hi``) of
    target samples kept (the others are clipped, left out)."""

    src: Any
    channels: int
    target: Any
    oy: int
    ox: int
    lo: float
    hi: float


class LayerTaps(NamedTuple):
    """A layer's jitted pass (``_jit.layer``). Direct pairs: for output channel o, taps
    ``starts[o] .. starts[o + 1]``, tap t reading ring
    row ``tj[t]`` (input channel i, kernel row a: i·kh + a) at offset ``tb[t]`` with weight
    ``tw[t]``. Separable pairs K = u vᵀ: for output o, pairs ``pstarts[o] .. pstarts[o + 1]``,
    pair p from input ``pin[p]``: down the columns ring rows ``prows[i]`` with weights ``pu[p]``,
    along the row offsets ``pb`` with weights ``pv[p]``. The
    ``bias`` of each output; ``cmap``, the source column of each column of an extended row
    (−1: ``cval``)."""

    tj: Any
    tb: Any
    tw: Any
    starts: Any
    pstarts: Any
    pin: Any
    prows: Any
    pu: Any
    pb: Any
    pv: Any
    bias: Any
    cmap: Any
