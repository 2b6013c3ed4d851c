"""Prepares arrays and calls the compiled direct, separable and FFT paths (``convtool._jit``
through ``convtool.compiled``, or their numpy twins), and the small-work numpy path."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import NamedTuple

import numpy as np

from convtool import compiled
from convtool.bundles import (
    Border,
    DirectTaps,
    Extension,
    Geometry,
    Output,
    SeparableTaps,
    Spectrum,
)
from convtool.choices import BORDER_CODES
from convtool.core.dispatch import (
    choose_method,
    fft_tiles,
    filtering_precision,
    numpy_takes,
    separable_factors,
)
from convtool.errors import KernelError, UsageError
from convtool.twins import direct, fft, separable
from convtool.twins.borders import extend_index, gather


class IntegerOutput(NamedTuple):
    """How ``run_path`` writes integer output: out = clamp(rint(acc + bias), 0, top)."""

    bias: float
    absolute: bool
    top: float


class Task(NamedTuple):
    """One correlation to run, whatever the path: the image ``x``, the ``weights``, the border
    and its ``cval``, the float type it is computed in, the output array ``out`` and, for an
    integer ``out``, how values become integers."""

    x: np.ndarray
    weights: np.ndarray
    border: str
    cval: float
    out_dtype: type
    out: np.ndarray
    integer: IntegerOutput | None


def run_path(task: Task, method: str, threads: int | None) -> np.ndarray:
    """Pick the path (see ``choose_method``), run ``task`` into its output and return that.
    Small work goes to numpy (``NUMPY_WORK``) unless a thread count asks for the core."""
    x, weights, out = task.x, task.weights, task.out
    kh, kw = weights.shape
    if method == "auto" and threads is None and numpy_takes(out.shape, weights):
        numpy_direct(task)
        return out
    chosen = choose_method(x.shape, (kh, kw), method)
    factors = None
    if chosen == "separable":
        factors = separable_factors(weights, filtering_precision(task.out_dtype, weights))
        if factors is None:
            if method == "separable":
                raise KernelError(f"the {kh}x{kw} kernel is not separable (its rank is above 1)")
            chosen = choose_method(x.shape, (kh, kw), "nonseparable")
    if chosen == "fft":
        with _threads(threads):
            _fft(task, now=threads is not None)
    elif factors is not None:
        _separable(task, factors, threads)
    else:
        _direct(task, threads)
    return out


def _core() -> ModuleType:
    """The numba core, ``convtool._jit``, imported on first use (``compiled.core``)."""
    return compiled.core()


def numpy_direct(task: Task) -> None:
    """Direct correlation into ``out`` with numpy: the extended image gathered whole (by the
    border rule of ``twins.borders``), one multiply-add of a shifted view per nonzero tap, in the
    float type of the numba core; the conversion of ``_jit.integer.to_integer`` after it. For
    small work only (``NUMPY_WORK``)."""
    x, weights, border, cval, out_dtype, out, integer = task
    kh, kw = weights.shape
    if border == "valid":
        padded: np.ndarray = x.astype(out_dtype, copy=False)
    else:
        h, w = x.shape[:2]
        mode = BORDER_CODES[border]
        rows = extend_index(h, -(kh // 2), h + kh - 1, mode)
        cols = extend_index(w, -(kw // 2), w + kw - 1, mode)
        flat = gather(x.reshape(h, -1), rows, cols, _channels(x), cval, out_dtype)
        padded = flat.reshape(len(rows), len(cols), *x.shape[2:])
    shape = out.shape
    ho, wo = shape[:2]
    acc: np.ndarray = out if integer is None else np.empty(shape, out_dtype)
    acc[...] = 0
    term: np.ndarray = np.empty(shape, out_dtype)
    for a, b in zip(*np.nonzero(weights), strict=True):
        np.multiply(padded[a : a + ho, b : b + wo], out_dtype(weights[a, b]), out=term)
        acc += term
    if integer is None:
        return
    acc += out_dtype(integer.bias)
    if integer.absolute:
        np.abs(acc, out=acc)
    np.clip(acc, 0, out_dtype(integer.top), out=acc)
    np.rint(acc, out=acc)
    out[...] = acc


def _channels(x: np.ndarray) -> int:
    return x.shape[2] if x.ndim == 3 else 1


def _rows(x: np.ndarray | None) -> np.ndarray | None:
    """(H, W[, C]) as the (H, W·C) rows the jitted core takes."""
    return None if x is None else x.reshape(x.shape[0], -1)


def _thread_count(threads: int | None) -> int:
    """``threads``, checked, or by default as many as numba may use (``NUMBA_NUM_THREADS``)."""
    _core()
    import numba

    most = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    if threads is None:
        return most
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
        raise UsageError(
            f"threads must be a whole number between 1 and {most}; got "
            f"{type(threads).__name__} {threads!r}"
        )
    threads = int(threads)
    if not 1 <= threads <= most:
        raise UsageError(
            f"threads must be between 1 and {most} (the cores numba may use); got {threads}"
        )
    return threads


def _nchunks(rows: int, per_thread: int) -> int:
    """Chunks of rows for the parallel loops (told without loading numba: a short run may do
    the work with the twins, see ``compiled.TWIN_BUDGET``)."""
    return max(1, min(rows, per_thread * compiled.thread_count()))


def _pad8(indices: list[np.ndarray], weights: list[np.ndarray]) -> list[np.ndarray]:
    """Tap tables padded to a multiple of 8 taps (at least 8): index columns repeat their last
    entry (a row already in the cache), weight columns get zeros."""
    count = len(indices[0])
    extra = -count % 8 if count else 8
    padded = [np.concatenate([c, np.full(extra, c[-1] if count else 0, np.int64)]) for c in indices]
    return padded + [np.concatenate([c, np.zeros(extra)]) for c in weights]


def _direct(task: Task, threads: int | None) -> None:
    src, weights, border, cval, out_dtype, out, integer = task
    channels = _channels(src)
    h, w = src.shape[:2]
    kern: np.ndarray = np.ascontiguousarray(weights, dtype=out_dtype)
    kh, kw = kern.shape
    shape = out.shape
    # Tap tables: source rows j = 0..kh of a pair of output rows, K[j] for the upper, K[j − 1]
    # for the lower one; then those of a single row.
    upper = np.zeros((kh + 1, kw))
    lower = np.zeros((kh + 1, kw))
    upper[:kh] = weights
    lower[1:] = weights
    j, b = np.nonzero((upper != 0) | (lower != 0))
    tj, tb, tw, tv = _pad8([j, b * channels], [upper[j, b], lower[j, b]])
    j, b = np.nonzero(weights)
    sj, sb, sw = _pad8([j, b * channels], [weights[j, b]])
    kind = (0,) if (kh, kw) == (3, 3) else ()  # the 3×3 written out, or tap tables (_segment)
    ph, pw, mode = _extension(border, kh, kw)
    taps = DirectTaps(
        kern, tj, tb, tw.astype(out_dtype), tv.astype(out_dtype), sj, sb, sw.astype(out_dtype)
    )
    args: tuple[object, ...] = (
        src.reshape(h, w * channels),
        Geometry(channels, kh, kw, ph, pw),
        Border(mode, out_dtype(cval)),
        kind,
        taps,
        _nchunks(shape[0], 4),
        _outputs(out, out_dtype, integer),
    )
    with _threads(threads):
        compiled.run(
            "correlate_direct",
            args,
            direct.correlate_direct,
            now=threads is not None,
            work=float(out.size) * int(np.count_nonzero(weights)),
        )


def _extension(border: str, kh: int, kw: int) -> tuple[int, int, int]:
    """Rows and columns the border adds before the image (kh//2, kw//2; none for ``valid``) and
    its code for the jitted core."""
    if border == "valid":
        return 0, 0, 0
    return kh // 2, kw // 2, BORDER_CODES[border]


def _separable(task: Task, factors: tuple[np.ndarray, np.ndarray], threads: int | None) -> None:
    src, _, border, cval, out_dtype, out, integer = task
    u, v = factors
    channels = _channels(src)
    h, w = src.shape[:2]
    kh, kw = len(u), len(v)
    shape = out.shape
    (b,) = np.nonzero(v)
    hb, hw = _pad8([b * channels], [v[b]])
    # the column pass: ring rows a = 0..kh of a pair, u[a] for the upper row, u[a − 1] for the
    # lower one; then those of a single row
    upper = np.append(u, 0.0)
    lower = np.insert(u, 0, 0.0)
    (a,) = np.nonzero((upper != 0) | (lower != 0))
    vj, vw, vv = _pad8([a], [upper[a], lower[a]])
    (a,) = np.nonzero(u)
    sj, sw = _pad8([a], [u[a]])
    ph, pw, mode = _extension(border, kh, kw)
    hcval = out_dtype(cval * float(v.sum()))
    taps = SeparableTaps(
        hb,
        hw.astype(out_dtype),
        vj,
        vw.astype(out_dtype),
        vv.astype(out_dtype),
        sj,
        sw.astype(out_dtype),
        hcval,
    )
    args: tuple[object, ...] = (
        src.reshape(h, w * channels),
        Geometry(channels, kh, kw, ph, pw),
        Border(mode, out_dtype(cval)),
        taps,
        _nchunks(shape[0], 2),
        _outputs(out, out_dtype, integer),
    )
    with _threads(threads):
        compiled.run(
            "correlate_separable",
            args,
            separable.correlate_separable,
            now=threads is not None,
            work=float(out.size) * int(np.count_nonzero(u) + np.count_nonzero(v)),
        )


def _outputs(out: np.ndarray, out_dtype: type, integer: IntegerOutput | None) -> Output:
    """``out`` as the (H, W·C) rows of the float output or of the integer one (the other None,
    so that numba compiles only the branch in use), and the conversion's scalars in the float
    type. Outputs are allocated in numpy, which backs big arrays with huge pages: an output
    allocated inside the jitted code was much slower to fill."""
    if integer is None:
        return Output(_rows(out), None, out_dtype(0), False, out_dtype(0))
    return Output(
        None, _rows(out), out_dtype(integer.bias), integer.absolute, out_dtype(integer.top)
    )


def _fft(task: Task, *, now: bool) -> None:
    """Correlation through the FFT (``_jit.fft.correlate_fft``: overlap-save tiles of the output,
    each the valid correlation of its window of the extended image)."""
    x, weights, border, cval, out_dtype, out, integer = task
    channels = _channels(x)
    h, w = x.shape[:2]
    kh, kw = weights.shape
    shape = out.shape
    ho, wo = shape[:2]
    (n0, n1), (t0, t1) = fft_tiles(ho, wo, kh, kw)
    rmap = np.empty(ho + kh - 1, np.int64)
    cmap = np.empty(wo + kw - 1, np.int64)
    if border == "valid":
        rmap[:] = np.arange(h)
        cmap[:] = np.arange(w)
    else:
        rmap[:] = extend_index(h, -(kh // 2), len(rmap), BORDER_CODES[border])
        cmap[:] = extend_index(w, -(kw // 2), len(cmap), BORDER_CODES[border])
    tables: list[np.ndarray] = [
        f(2 * np.pi * np.arange(n) / n).astype(out_dtype)
        for n in (n0, n1)
        for f in (np.cos, np.sin)
    ]
    c0, s0, c1, s1 = tables
    kre: np.ndarray = np.empty((n1, n0), out_dtype)
    kim: np.ndarray = np.empty((n1, n0), out_dtype)
    kern: np.ndarray = np.ascontiguousarray(weights, dtype=out_dtype)
    spectrum = Spectrum(kre, kim, c0, s0, c1, s1)
    scale = out_dtype(1 / (n0 * n1))
    compiled.run("fft_kernel_spectrum", (kern, scale, spectrum), fft.fft_kernel_spectrum, now=now)
    pairs = (-(-ho // t0) * -(-wo // t1) * channels + 1) // 2
    args = (
        x.reshape(h, w * channels),
        channels,
        Extension(rmap, cmap, out_dtype(cval)),
        spectrum,
        t0,
        t1,
        _nchunks(pairs, 4),
        _outputs(out, out_dtype, integer),
    )
    compiled.run("correlate_fft", args, fft.correlate_fft, now=now)


@contextmanager
def thread_scope(threads: int | None) -> Iterator[int]:
    """Within: numba's parallel loops run on ``threads`` threads (checked; by default as many
    as it uses now), the count yielded."""
    with _threads(threads):
        _core()
        import numba

        yield numba.get_num_threads()


class _threads:
    """Context manager: run the parallel core on ``n`` threads, then restore the previous count."""

    def __init__(self, n: int | None) -> None:
        self.n = n
        self.previous: int | None = None

    def __enter__(self) -> None:
        if self.n is None:
            return
        _thread_count(self.n)
        import numba

        self.previous = numba.get_num_threads()
        numba.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            import numba

            numba.set_num_threads(self.previous)
