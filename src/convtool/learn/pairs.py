"""Preparing the pairs of ``learn``: arrays under the pixel policy, aligned, checked, with
warnings about mixed units and hints about wrong target sizes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from convtool.core.correlate import writeable
from convtool.errors import LearnError, quoted
from convtool.io.picture import Picture
from convtool.learn.work import PairWork

MAX_LEARN_WEIGHTS = 4096
"""The most kernel weights ``learn`` solves for (64×64): the normal matrix has (kh·kw + 2)²
entries per thread."""


ArrayOrArrays = np.ndarray | Sequence[np.ndarray]


@dataclass(frozen=True)
class Pair:
    """One aligned pair, ready for the jitted passes."""

    src: np.ndarray  # (H, W·C), float32 or float64
    target: np.ndarray  # (Ht, Wt·C), same dtype
    channels: int
    oy: int
    ox: int
    lo: float
    hi: float
    shift: float
    input_name: str
    raw: Raw | None = None


@dataclass(frozen=True)
class Raw:
    """A pair's stored samples, for the exact normal equations
    (:func:`~convtool.learn.lstsq.exact_normal_equations`)."""

    src: np.ndarray  # (H, W·C), uint8 or uint16
    target: np.ndarray  # (Ht, Wt·C), uint8 or uint16
    top_x: int  # 255 or 65535: the input is src / top_x
    top_y: int
    lo: float  # the target's clip limits in stored units
    hi: float


def as_list(arrays: ArrayOrArrays, what: str) -> list[np.ndarray]:
    if isinstance(arrays, np.ndarray):
        return [arrays]
    if isinstance(arrays, (list, tuple)):
        if arrays and all(
            not isinstance(a, np.ndarray) and np.ndim(a) == 1 for a in arrays
        ):  # [[1, 2], [3, 4]]: rows of one image, not a list of images
            raise LearnError(
                f"{what}: got a list of {len(arrays)} rows of numbers; a list is read as one "
                "array per pair, so give one image as an array: np.asarray(rows)"
            )
        return [np.asarray(a) for a in arrays]
    raise LearnError(f"{what}: expected an array or a list of arrays; got {type(arrays).__name__}")


def unit_warnings(
    xs: list[np.ndarray],
    ys: list[np.ndarray],
    clip_limits: Sequence[tuple[float, float] | None] | None,
    names: Sequence[tuple[str, str]],
) -> list[str]:
    """A warning for each pair that mixes a scaled 8/16-bit array with a float one.

    uint8 and uint16 arrays are scaled to [0, 1]; float arrays are taken as they are. A float
    target computed from the stored integers (``convtool.correlate`` does not scale) is then
    255 (or 65535) times the [0, 1] one, and so is every learned weight: nothing in the data
    tells the two apart, so the mixture is pointed out. A float target with ``clip_limits`` is
    declared integer-stored (read by ``read_picture``) and is in [0, 1] units.
    """
    warnings = []
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        x_int = x.dtype in (np.uint8, np.uint16)
        y_int = y.dtype in (np.uint8, np.uint16)
        y_declared = clip_limits is not None and clip_limits[i] is not None
        if x_int == y_int or (x_int and y.dtype.kind == "f" and y_declared):
            continue
        scaled, plain = (x, y) if x_int else (y, x)
        scaled_name, plain_name = names[i] if x_int else names[i][::-1]
        top = int(np.iinfo(scaled.dtype).max)
        warnings.append(
            f"{scaled_name} is {scaled.dtype}, scaled to [0, 1] (÷ {top}), but {plain_name} is "
            f"{plain.dtype}, taken as it is: the kernel is right if {plain_name} is in [0, 1] "
            f"units too, but {top}× off if it holds values of the stored integers (as "
            "convtool.correlate gives them); give both arrays in the same units, e.g. both as "
            f"floats (array / {top} for [0, 1])"
        )
    return warnings


def shaped(array: np.ndarray, name: str) -> np.ndarray:
    """``array`` as (H, W, C) numbers, as they are (a LearnError for anything else)."""
    a = np.asarray(array)
    if a.dtype.kind not in "biuf":
        raise LearnError(f"{name} has dtype {a.dtype}; expected numbers (uint8, uint16, float)")
    if a.ndim == 2:
        a = a[:, :, np.newaxis]
    if a.ndim != 3:
        hint = ""
        if a.ndim == 4:  # a batch as deep-learning code holds it
            index = "[0, 0]" if a.shape[:2] == (1, 1) else "[i, c]"
            hint = (
                f" (an (N, C, H, W) batch, as in PyTorch, is not one image: give {name}{index}, "
                "or move the channels last with .transpose(1, 2, 0) for one sample)"
            )
        raise LearnError(
            f"{name} has {a.ndim} dimensions, shape {a.shape}; expected (H, W) or (H, W, C){hint}"
        )
    if 0 in a.shape:
        raise LearnError(f"{name} is empty (shape {a.shape}); it needs at least one pixel")
    return a


def as_planes(array: np.ndarray, name: str) -> tuple[np.ndarray, bool]:
    """``array`` as float (H, W, C) under the pixel policy, and whether it was integer-stored."""
    a = shaped(array, name)
    integer_stored = a.dtype in (np.uint8, np.uint16)
    if integer_stored:
        scale = np.float32(np.iinfo(a.dtype).max)
        a = np.asarray(a, dtype=np.float32) / scale
    elif a.dtype == np.float16:
        a = a.astype(np.float32)
    elif a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise LearnError(f"{name} has NaN or infinite values; every value must be finite")
    return a, integer_stored


def prepare_pair(
    x: np.ndarray,
    y: np.ndarray,
    ksize: tuple[int, int],
    limits: tuple[float, float] | None,
    keep_clipped: bool,
    names: tuple[str, str],
    anchor: tuple[int, int] | None = None,
) -> Pair:
    input_name, target_name = names
    xp, x_integer = as_planes(x, input_name)
    yp, integer_stored = as_planes(y, target_name)
    h, w, c = xp.shape
    th, tw, tc = yp.shape
    if tc != c:
        raise LearnError(
            f"{input_name} has {c} channel{'s' * (c != 1)} but {target_name} has {tc}; input "
            "and target need the same channels (--gray compares both in grey levels)"
        )
    oy, ox = target_offset((h, w), (th, tw), ksize, names, anchor)
    dtype = np.float64 if np.float64 in (xp.dtype, yp.dtype) else np.float32
    src = writeable(np.ascontiguousarray(xp, dtype=dtype).reshape(h, w * c))
    target = writeable(np.ascontiguousarray(yp, dtype=dtype).reshape(th, tw * c))
    raw = None
    if x_integer and integer_stored and (keep_clipped or limits in (None, (0.0, 1.0))):
        top_y = int(np.iinfo(y.dtype).max)
        raw = Raw(
            writeable(np.ascontiguousarray(x).reshape(h, w * c)),
            writeable(np.ascontiguousarray(y).reshape(th, tw * c)),
            int(np.iinfo(x.dtype).max),
            top_y,
            -math.inf if keep_clipped else 0.0,
            math.inf if keep_clipped else float(top_y),
        )
    if limits is None and integer_stored:
        limits = (0.0, 1.0)
    lo, hi = (-math.inf, math.inf) if keep_clipped or limits is None else limits
    shift = float(np.mean(target, dtype=np.float64))
    return Pair(src, target, c, oy, ox, float(lo), float(hi), shift, input_name, raw)


def target_offset(
    shape: tuple[int, int],
    target_shape: tuple[int, int],
    ksize: tuple[int, int],
    names: tuple[str, str],
    anchor: tuple[int, int] | None = None,
) -> tuple[int, int]:
    """Where the valid windows' outputs start in the target: ``anchor`` (by default the
    kernel's centre) in a same-size target, (0, 0) in a valid one; LearnError for a kernel
    larger than the input or a target of another size."""
    (h, w), (th, tw), (kh, kw) = shape, target_shape, ksize
    input_name, target_name = names
    if kh > h or kw > w:
        raise LearnError(
            f"the {kh}x{kw} kernel is larger than {input_name} ({h}x{w}); the kernel must fit "
            f"inside every input: choose a --size of at most {h}x{w}"
        )
    if (th, tw) == (h, w):
        return (kh // 2, kw // 2) if anchor is None else anchor
    if (th, tw) == (h - kh + 1, w - kw + 1):
        return 0, 0
    raise LearnError(
        f"{target_name} is {th}x{tw} but {input_name} is {h}x{w}: with a {kh}x{kw} kernel "
        f"the target must be {h}x{w} (same size) or {h - kh + 1}x{w - kw + 1} (valid "
        f"output){_shape_hint(h, w, th, tw, kh, kw)}"
    )


def _shape_hint(h: int, w: int, th: int, tw: int, kh: int, kw: int) -> str:
    """What a target of the wrong size may be: a valid output of another size, a 'full' one."""
    if (th, tw) == (h + kh - 1, w + kw - 1):
        return (
            "; it is the size of a 'full' output (scipy.signal's mode='full'), which learn does "
            f"not read: crop it to the valid part, rows {kh - 1} to {h - 1} and columns "
            f"{kw - 1} to {w - 1} (target[{kh - 1}:{h}, {kw - 1}:{w}])"
        )
    if 0 < th <= h and 0 < tw <= w and (h - th + 1) * (w - tw + 1) <= MAX_LEARN_WEIGHTS:
        size = f"{h - th + 1}x{w - tw + 1}"
        return (
            f"; it is the valid output of a {size} kernel: if that is the filter, use "
            f"--size {size}; otherwise check that the pair is right"
        )
    return "; check that the pair is right and that --size matches the filter"


def nchunks(rows: int, unknowns: int) -> int:
    import numba

    threads = numba.get_num_threads()
    per_thread = 4 if unknowns <= 128 else 1
    return max(1, min(rows, per_thread * threads))


def read_pairs(
    files: Sequence[str], *, gray: bool, max_pixels: int
) -> tuple[list[Picture], list[tuple[str, str]]]:
    """The pictures of ``learn``'s INPUT TARGET files, in pairs (input, target, input...),
    and each pair's names. A multi-page TIFF or animation pairs page by page with its target's
    pages (page i of the input with page i of the target), named ``file[i]`` as ImageMagick
    names a page. 8- and 16-bit pictures come as their stored samples (learn then sums them
    exactly), colour ones converted to grey with ``gray``.
    """
    from convtool.io.pages import page_count, page_name
    from convtool.io.read import read_picture

    pictures: list[Picture] = []
    names: list[tuple[str, str]] = []
    for source, target in zip(files[0::2], files[1::2], strict=True):
        counts = (page_count(source), page_count(target))
        if counts[0] != counts[1]:
            raise LearnError(
                f"{_shown(source)} has {counts[0]} page{'s' * (counts[0] != 1)} and "
                f"{_shown(target)} "
                f"{counts[1]}; learn pairs page i of the input with page i of the target: give "
                "files with as many pages"
            )
        paged = counts[0] > 1
        for index in range(counts[0]):
            page = index if paged else None
            for name in (source, target):
                picture = read_picture(
                    name, gray=gray, max_pixels=max_pixels, samples=not gray, page=page
                )
                pictures.append(picture)
            pair = (_shown(source), _shown(target))
            names.append((page_name(pair[0], index), page_name(pair[1], index)) if paged else pair)
    return pictures, names


def _shown(path: str) -> str:
    return "standard input" if path == "-" else quoted(path)


def aligned(
    src: np.ndarray, target: np.ndarray, pair: Pair, kh: int, kw: int
) -> tuple[np.ndarray, np.ndarray]:
    """``src`` (H, W·C) as planes (C, H, W) and the aligned part of ``target`` as (C, Ho, Wo)
    (views): the valid sample (c, i, j) of the input is compared with ``y[c, i, j]``. ``src``
    and ``target`` are the pair's arrays or its stored integers."""
    c = pair.channels
    h = src.shape[0]
    w = src.shape[1] // c
    ho, wo = h - kh + 1, w - kw + 1
    x = src.reshape(h, w, c).transpose(2, 0, 1)
    rows = target.reshape(target.shape[0], -1, c)[pair.oy : pair.oy + ho, pair.ox : pair.ox + wo]
    return x, rows.transpose(2, 0, 1)


def pair_work(pair: Pair, kh: int, kw: int) -> PairWork:
    """The pair's size for the cost model, with its samples left out as clipped counted."""
    x, y = aligned(pair.src, pair.target, pair, kh, kw)
    left = 0
    if math.isfinite(pair.lo) or math.isfinite(pair.hi):
        left = y.size - int(np.count_nonzero((pair.lo < y) & (y < pair.hi)))
    return PairWork(pair.channels, x.shape[1], x.shape[2], y.size, left)
