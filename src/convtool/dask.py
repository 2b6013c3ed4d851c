"""Dask: huge images as chunked arrays, filtered lazily by ``correlate_dask``.

Nothing here is imported by ``import convtool`` until ``convtool.correlate_dask`` is used;
Dask comes with the optional extra ``pip install 'convtool[dask]'``.

``correlate_dask`` filters a Dask array with ``map_overlap`` and the same numba core as
``correlate``. The border mode is applied once, at the true image edges only: the array is first
extended by kh − 1 rows and kw − 1 columns, made of its own edge rows and columns by the index
mapping of the border mode (so ``wrap`` brings the bottom rows above the top, and kernels larger
than the image work); then every block, with its neighbours' rows as halo (depth kh//2 before
and kh − 1 − kh//2 after, asymmetric for even sizes), is correlated with ``border="valid"``.
No block ever sees a made-up border in the middle of the image.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import numpy as np

from convtool.core.borders import check_border, check_cval, check_fits
from convtool.core.correlate import KernelLike, correlate, kernel_weights
from convtool.errors import ImageError
from convtool.io.pixels import dtype_holds
from convtool.stream.engine import extend_index

CORE_LOCK = threading.Lock()
"""One parallel core call at a time per process: the core already uses every core, and numba's
fallback threading layer (workqueue) must not be entered from two threads at once."""


def correlate_dask(
    array: Any,
    kernel: KernelLike,
    *,
    border: str = "reflect",
    cval: float = 0.0,
    method: str = "auto",
    threads: int | None = None,
) -> Any:
    """Cross-correlate a (H, W) or (H, W, C) Dask array lazily; returns a Dask array.

    The result equals ``convtool.correlate(array, kernel, border=border, cval=cval)`` (same
    dtype, values within float rounding) and keeps the input's chunks along H and W where they
    can hold the kernel's halo; smaller chunks along an axis are merged into chunks of at least
    the kernel's size on that axis. Channels may be chunked too: each is filtered on its own.
    ``array`` may also be a NumPy array or anything ``dask.array.asarray`` takes (a Zarr array,
    ``tifffile.imread(path, aszarr=True)`` opened with zarr...).

    >>> import dask.array as da
    >>> x = da.from_array(np.arange(16.0).reshape(4, 4), chunks=2)
    >>> correlate_dask(x, [[0, 1], [2, 3]], border="valid").compute()
    array([[24., 30., 36.],
           [48., 54., 60.],
           [72., 78., 84.]])
    """
    import dask.array as da

    check_border(border)
    cval = check_cval(cval)
    weights = kernel_weights(kernel)
    x = da.asarray(array)
    if x.ndim not in (2, 3):
        raise ImageError(
            f"image has {x.ndim} dimensions, shape {x.shape}; expected (H, W) or (H, W, C)"
        )
    if any(_unknown(n) for n in x.shape):
        raise ImageError("the array's shape is unknown (NaN chunks); call compute_chunk_sizes()")
    if min(x.shape) == 0:
        raise ImageError(f"image is empty (shape {x.shape}); it needs at least one pixel")
    x = _supported_dtype(x)
    out_dtype = np.dtype(np.float64 if x.dtype == np.float64 else np.float32)
    kh, kw = (int(n) for n in weights.shape)
    h, w = (int(n) for n in x.shape[:2])
    check_fits((kh, kw), (h, w), border)
    if border == "constant" and not dtype_holds(x.dtype, cval):
        x = x.astype(out_dtype)

    depth: dict[int, tuple[int, int]] = {}
    out_chunks: list[tuple[int, ...]] = []
    for axis, k in ((0, kh), (1, kw)):
        before, after = k // 2, k - 1 - k // 2
        original = x.chunks[axis]
        if border != "valid":
            x = _extend(x, axis, before, after, border, cval)
        chunks = _aligned_chunks(original, before, after, k, extended=border != "valid")
        x = x.rechunk({axis: chunks})
        depth[axis] = (before, after)
        out = list(chunks)
        if len(out) == 1:
            out[0] -= k - 1
        else:
            out[0] -= before
            out[-1] -= after
        out_chunks.append(tuple(out))
    if x.ndim == 3:
        depth[2] = (0, 0)
        out_chunks.append(x.chunks[2])
    block = functools.partial(_correlate_block, weights=weights, method=method, threads=threads)
    return x.map_overlap(
        block,
        depth=depth,
        boundary="none",
        trim=False,
        chunks=tuple(out_chunks),
        dtype=out_dtype,
        meta=np.empty((0,) * x.ndim, dtype=out_dtype),
    )


def _correlate_block(
    block: np.ndarray, *, weights: np.ndarray, method: str, threads: int | None
) -> np.ndarray:
    """One block with its halo (already extended at true edges): its valid correlation."""
    with CORE_LOCK:
        return correlate(block, weights, border="valid", method=method, threads=threads)


def _supported_dtype(x: Any) -> Any:
    """The dtypes ``correlate`` takes as they are; others converted as it converts them."""
    dtype = np.dtype(x.dtype)
    if dtype in (np.uint8, np.uint16, np.float32, np.float64):
        return x
    if dtype.kind == "b":
        return x.astype(np.uint8)
    if dtype.kind in "iu":
        return x.astype(np.float64)
    if dtype.kind == "f":
        return x.astype(np.float32 if dtype.itemsize < 4 else np.float64)
    raise ImageError(f"image has dtype {dtype}; expected numbers (uint8, uint16, float)")


def _extend(x: Any, axis: int, before: int, after: int, border: str, cval: float) -> Any:
    """``x`` with ``before``/``after`` extra lines along ``axis``, made by the border mode.

    The border extension of a Dask array: the index mapping is the one owner's
    (``extend_index``); only the assembly from slices is Dask's.
    """
    import dask.array as da

    n = int(x.shape[axis])
    pieces = []
    for positions in (np.arange(-before, 0), np.arange(n, n + after)):
        part = []
        for first, step, count in _strides(extend_index(positions, n, border)):
            if first < 0:
                shape = list(x.shape)
                shape[axis] = count
                part.append(da.full(tuple(shape), cval, dtype=x.dtype))
                continue
            stop = first + step * count
            index: list[slice] = [slice(None)] * x.ndim
            index[axis] = slice(first, stop if stop >= 0 else None, step)
            part.append(x[tuple(index)])
        pieces.append(part)
    return da.concatenate([*pieces[0], x, *pieces[1]], axis=axis)


def _strides(indices: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of indices moving by +1 or −1 (or of −1 fills): (first, step, count)."""
    runs: list[tuple[int, int, int]] = []
    for value in (int(v) for v in indices):
        if runs:
            first, step, count = runs[-1]
            last = first + step * (count - 1)
            if first < 0 and value < 0:
                runs[-1] = (first, 1, count + 1)
                continue
            if first >= 0 and value >= 0:
                if count == 1 and abs(value - first) == 1:
                    runs[-1] = (first, value - first, 2)
                    continue
                if count > 1 and value - last == step:
                    runs[-1] = (first, step, count + 1)
                    continue
        runs.append((value, 1, 1))
    return runs


def _aligned_chunks(
    chunks: tuple[int, ...], before: int, after: int, k: int, *, extended: bool
) -> tuple[int, ...]:
    """Chunks of the (extended) axis such that each block's halo comes from its neighbours.

    With ``extended``, the first chunk takes the ``before`` lines added above and the last the
    ``after`` lines added below, so the output keeps the input's ``chunks``. Every chunk must
    hold at least max(before, after) lines (so Dask never rechunks behind our back), and every
    output chunk (the first loses ``before``, the last ``after``) at least one line; when the
    input's chunks do not qualify, uniform chunks of at least ``k`` lines replace them.
    """
    ext = [int(c) for c in chunks]
    if extended:
        ext[0] += before
        ext[-1] += after
    if len(ext) == 1:
        return tuple(ext)
    out = [*ext]
    out[0] -= before
    out[-1] -= after
    if min(ext) >= max(before, after) and min(out) >= 1:
        return tuple(ext)
    total = sum(ext)
    size = max(max(chunks), k)
    count, rest = divmod(total, size)
    uniform = [size] * count
    if rest >= k or not uniform:
        uniform.append(rest)
    elif rest:
        uniform[-1] += rest
    return tuple(uniform)


def _unknown(n: object) -> bool:
    """A NaN size: Dask's mark for a chunk whose length is not known yet."""
    return isinstance(n, float) and n != n
