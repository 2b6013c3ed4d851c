"""Fitting the kernel that turned one image into another: least squares, gradient descent, reports.

Given pairs (X, Y), :func:`learn_kernel` finds the kernel K (and, with ``bias=True``, a scalar b)
minimising the summed squared error

    loss = Σ_pairs Σ_channels Σ_(i, j) (X ⋆ K + b − Y)²

with one kernel for every channel, the way ``correlate`` and ``convtool apply`` use it.

Alignment. A target of the input's size is a same-size output with the kernel anchored at
(kh//2, kw//2) as ``correlate`` does; only the pixels whose whole window lies inside the input
are used, so whatever border mode produced the target does not matter. A target of size
(H − kh + 1) × (W − kw + 1) is a ``valid`` output (the textbook's ``corr2d``). Anything else is
a :class:`~convtool.errors.LearnError` naming the sizes.

Clipped samples. Targets stored as 8- or 16-bit integers hold the negative responses of the
filter that made them clipped to 0 and its overflow clipped to the maximum. Those samples (per
channel) say only "at most 0" or "at least the maximum", so they are left out of the fit unless
``keep_clipped``. Float targets are never left out.

Methods. ``lstsq`` solves the normal equations (XᵀX) k = Xᵀy exactly. They are accumulated in
one parallel pass over the pixels (``_jit.learn_normal_equations``) without ever building the
(pixels × kh·kw) patch matrix, so memory is O((kh·kw)²) whatever the image size (data far
from 0 against their range are centred first, band by band, and the system is solved in
coordinates where their mean multiplies one unknown, ΣK); the small
symmetric system is then scaled to a unit diagonal and solved through its eigendecomposition
with a rank tolerance, which gives the minimum-norm solution when the data do not determine the
kernel (and a warning saying why). ``gd`` is the textbook's gradient descent on the same summed
loss, ``K ← K − lr · ∇K``, from a N(0, 0.01²) start.

numba is imported on first use, not with this module.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convtool import compiled
from convtool.choices import DEFAULT_EPOCHS, LEARN_METHODS
from convtool.core.correlate import writeable
from convtool.errors import LearnError, UsageError
from convtool.kernels.value import MAX_KERNEL_SIDE, Kernel

INIT_STD = 0.01
"""Gradient descent starts from weights drawn from N(0, INIT_STD²) and a bias of 0."""

RANK_RTOL = 1e-10
"""Eigenvalues of the unit-diagonal normal matrix below ``RANK_RTOL × the largest`` count as
zero: those directions of the kernel are not determined by the data (minimum-norm solution)."""

MOST_CLIPPED = 0.5
"""Warn when more than this fraction of the aligned target samples was left out as clipped."""

MAX_LEARN_WEIGHTS = 4096
"""The most kernel weights ``learn`` solves for (64×64): the normal matrix has (kh·kw + 2)²
entries per thread."""

ArrayOrArrays = np.ndarray | Sequence[np.ndarray]
Progress = Callable[[int, float], None]


@dataclass(frozen=True)
class LearnResult:
    """A fitted kernel and how well it fits.

    ``kernel`` carries the weights (in the orientation asked for: correlation, or convolution
    with ``convolve=True``) and the bias (0 unless fitted). The figures are over the target
    samples used (a colour pixel counts once per channel): ``rmse`` = √(Σr²/N), ``max_error`` =
    max |r|, ``r2`` = 1 − Σr²/Σ(y − ȳ)², each None when no sample was used (``r2`` also when
    the target is constant). ``pixels_clipped`` counts target samples left out as clipped.
    ``rank`` of the ``unknowns`` (weights, plus the bias) are determined by the data (None when
    gradient descent ran with a given ``lr`` and the normal matrix was not computed).
    ``loss_history`` holds, for ``gd``, the loss at the start of each epoch, before its update
    (what the textbook prints).
    """

    kernel: Kernel
    method: str
    convolve: bool
    rmse: float | None
    max_error: float | None
    r2: float | None
    pixels_used: int
    pixels_clipped: int
    unknowns: int
    rank: int | None
    warnings: tuple[str, ...] = ()
    loss_history: tuple[float, ...] = ()
    lr: float | None = None
    epochs: int | None = None

    @property
    def weights(self) -> np.ndarray:
        return self.kernel.weights

    @property
    def bias(self) -> float:
        return self.kernel.bias

    def as_dict(self) -> dict[str, Any]:
        """The result as plain JSON-ready values (what ``convtool learn --json`` prints)."""
        return {
            "kernel": self.weights.tolist(),
            "bias": self.bias,
            "size": list(self.kernel.shape),
            "orientation": "convolution" if self.convolve else "correlation",
            "method": self.method,
            "rmse": self.rmse,
            "max_error": self.max_error,
            "r2": self.r2,
            "pixels_used": self.pixels_used,
            "pixels_clipped": self.pixels_clipped,
            "unknowns": self.unknowns,
            "rank": self.rank,
            "warnings": list(self.warnings),
            "lr": self.lr,
            "epochs": self.epochs,
            "loss_history": list(self.loss_history),
        }


_SIZE_RE = re.compile(r"^\s*(\d+)\s*(?:[xX×]\s*(\d+))?\s*$")


def parse_size(spec: str | int | tuple[int, int] | Sequence[int]) -> tuple[int, int]:
    """A kernel size as (kh, kw): ``"HxW"``, ``"N"`` (N×N), an int, or a pair of ints.

    >>> parse_size("1x2"), parse_size("5"), parse_size((3, 4))
    ((1, 2), (5, 5), (3, 4))
    """
    if isinstance(spec, str):
        match = _SIZE_RE.match(spec)
        if not match:
            raise UsageError(
                f"kernel size {spec!r} is not HxW or N; write e.g. --size 3x3, --size 1x2 or "
                "--size 5"
            )
        kh = int(match.group(1))
        kw = int(match.group(2) or match.group(1))
    elif isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        kh = kw = int(spec)
    else:
        try:
            kh, kw = (int(v) for v in spec)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise UsageError(
                f"kernel size {spec!r} is not an int, a pair (kh, kw) or 'HxW'"
            ) from None
    if kh < 1 or kw < 1:
        raise UsageError(f"kernel size {kh}x{kw}: both sides must be at least 1")
    if max(kh, kw) > MAX_KERNEL_SIDE or kh * kw > MAX_LEARN_WEIGHTS:
        raise UsageError(
            f"kernel size {kh}x{kw} has {kh * kw} weights; learn solves for at most "
            f"{MAX_LEARN_WEIGHTS} (64x64, say), as its normal matrix grows with the square"
        )
    return kh, kw


@dataclass(frozen=True)
class _Pair:
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
    raw: _Raw | None = None


@dataclass(frozen=True)
class _Raw:
    """A pair's stored samples, for the exact normal equations (see :func:`_exact_parts`)."""

    src: np.ndarray  # (H, W·C), uint8 or uint16
    target: np.ndarray  # (Ht, Wt·C), uint8 or uint16
    top_x: int  # 255 or 65535: the input is src / top_x
    top_y: int
    lo: float  # the target's clip limits in stored units
    hi: float


def learn_kernel(
    inputs: ArrayOrArrays,
    targets: ArrayOrArrays,
    size: str | int | tuple[int, int],
    *,
    bias: bool = False,
    method: str = "lstsq",
    convolve: bool = False,
    keep_clipped: bool = False,
    clip_limits: Sequence[tuple[float, float] | None] | None = None,
    lr: float | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    progress: Progress | None = None,
    names: Sequence[tuple[str, str]] | None = None,
) -> LearnResult:
    """Fit the ``size`` kernel K (and, with ``bias``, b) minimising Σ (X ⋆ K + b − Y)².

    ``inputs`` and ``targets``: one array each, or equally long lists of arrays (pairs may
    differ in size). Arrays are (H, W) or (H, W, C), input and target with the same C; one
    kernel serves every channel. uint8 and uint16 arrays follow the pixel policy: scaled to
    [0, 1] (/ 255, / 65535), and a target's extreme stored values count as clipped. Float
    arrays are taken as they are, never clipped; ``clip_limits`` (one ``(lo, hi)`` or None per
    target) marks float targets that were stored as integers, e.g. images read by
    ``convtool.imaging.read_picture`` (``(0.0, 1.0)`` when ``integer_stored``).

    A target of the input's size is a same-size output anchored at (kh//2, kw//2), of which
    only the pixels whose window lies inside the input are used; a target of
    (H − kh + 1) × (W − kw + 1) is a ``valid`` output. ``size`` is ``"HxW"``, ``N`` or
    ``(kh, kw)``.

    ``method="lstsq"`` solves exactly (minimum-norm, with a warning, when the data leave the
    kernel undetermined). ``method="gd"`` runs ``epochs`` (default :data:`DEFAULT_EPOCHS`)
    steps of ``K ← K − lr · ∇K`` on the summed loss from N(0, 0.01²) (``seed``), with
    ``lr`` by default 1/L, L the largest eigenvalue of the loss's Hessian (2·XᵀX, found from
    the normal matrix), which guarantees descent; ``progress(epoch, loss)`` is called with the
    loss at the start of each epoch. ``convolve`` returns the kernel in convolution
    orientation (what ``convolve``/``apply --convolve`` expect). Samples of integer-stored
    targets at their extremes are left out unless ``keep_clipped``.

    >>> x = np.ones((6, 8)); x[:, 2:6] = 0
    >>> y = x[:, :-1] - x[:, 1:]                      # the textbook's edge map, 6x7
    >>> learn_kernel(x, y, "1x2").weights.round(12)
    array([[ 1., -1.]])
    """
    check_options(method, lr=lr, epochs=epochs, seed=seed)
    kh, kw = parse_size(size)
    xs = _as_list(inputs, "inputs")
    ys = _as_list(targets, "targets")
    if len(xs) != len(ys):
        raise LearnError(
            f"{len(xs)} inputs but {len(ys)} targets; give them in pairs (INPUT TARGET ...)"
        )
    if not xs:
        raise LearnError("no pairs given; learning a kernel needs at least one INPUT TARGET pair")
    if clip_limits is not None:
        clip_limits = _check_clip_limits(clip_limits, len(ys))
    if names is None:
        names = [(f"input {i + 1}", f"target {i + 1}") for i in range(len(xs))]
    elif len(names) != len(xs) or not all(
        isinstance(pair, (tuple, list)) and len(pair) == 2 for pair in names
    ):
        raise UsageError(
            f"names needs one (input name, target name) pair for each of the {len(xs)} pairs; "
            f"got {names!r}"
        )
    pairs = [
        _prepare_pair(
            x,
            y,
            (kh, kw),
            None if clip_limits is None else clip_limits[i],
            keep_clipped,
            names[i],
        )
        for i, (x, y) in enumerate(zip(xs, ys, strict=True))
    ]
    n = kh * kw
    unknowns = n + int(bias)
    warnings = _unit_warnings(xs, ys, clip_limits, names)
    normal: _Normal | None = None
    rank: int | None = None
    history: list[float] = []
    exact = method == "lstsq" and all(p.raw is not None for p in pairs)
    raw_parts: list[_RawPart] = []
    if exact:
        normal, raw_parts = _exact_normal_equations(pairs, kh, kw)
    elif method == "lstsq" or lr is None:
        normal, _counts = _normal_equations(pairs, kh, kw)
    if method == "lstsq":
        assert normal is not None
        z, rank = _solve(normal, n, bias)
        weights = z[:n].reshape(kh, kw)
        b = float(z[n]) if bias else 0.0
    else:
        epochs = DEFAULT_EPOCHS if epochs is None else epochs
        if normal is not None:
            lr = _default_lr(normal.gram, n, bias)
            rank = _rank(normal, n, bias)
        assert lr is not None
        weights, b = _descend(pairs, kh, kw, bias, lr, int(epochs), seed, progress, history)
    figures = _exact_figures(pairs, raw_parts, weights, b) if exact else _figures(pairs, weights, b)
    used, clipped = figures["used"], figures["clipped"]
    aligned = used + clipped
    if clipped and clipped > MOST_CLIPPED * aligned:
        warnings.append(
            f"{clipped} of the {aligned} target samples ({100 * clipped / aligned:.0f}%) sit at "
            "0 or at the maximum of their integer range and were left out as clipped, so the fit "
            f"rests on the other {used}; if those values are real data rather than clipping (a "
            "binary mask, say), use --keep-clipped (keep_clipped=True)"
        )
    if rank is not None and rank < unknowns:
        warnings.append(_rank_warning(rank, unknowns, used, pairs, kh, kw, bias, method))
    if method == "gd" and normal is not None and figures["rmse"] is not None:
        assert epochs is not None
        warnings += _convergence_warning(pairs, normal, kh, kw, bias, figures["rmse"], int(epochs))
    if convolve:
        weights = weights[::-1, ::-1]
    label = f"learned {kh}x{kw} ({method}{', convolution' if convolve else ''})"
    return LearnResult(
        kernel=Kernel(weights, label, b),
        method=method,
        convolve=convolve,
        rmse=figures["rmse"],
        max_error=figures["max_error"],
        r2=figures["r2"],
        pixels_used=used,
        pixels_clipped=clipped,
        unknowns=unknowns,
        rank=rank,
        warnings=tuple(warnings),
        loss_history=tuple(history),
        lr=lr if method == "gd" else None,
        epochs=int(epochs) if method == "gd" and epochs is not None else None,
    )


def check_options(
    method: str,
    *,
    lr: float | None = None,
    epochs: int | None = None,
    seed: int | None = None,
) -> None:
    """Raise a UsageError for an unknown method, gradient-descent options given to ``lstsq``,
    a learning rate that is not a finite number > 0, or epochs that are not a whole number ≥ 1.
    """
    if method not in LEARN_METHODS:
        raise UsageError(f"unknown method {method!r}; choose one of {', '.join(LEARN_METHODS)}")
    if method != "gd":
        given = [
            f"--{name}"
            for name, v in (("lr", lr), ("epochs", epochs), ("seed", seed))
            if v is not None
        ]
        if given:
            raise UsageError(
                f"{', '.join(given)} only appl{'y' if len(given) > 1 else 'ies'} to --method gd "
                f"(gradient descent); drop {'them' if len(given) > 1 else 'it'} or add "
                "--method gd"
            )
    if lr is not None and not (
        isinstance(lr, (int, float, np.integer, np.floating))
        and not isinstance(lr, bool)
        and math.isfinite(lr)
        and lr > 0
    ):
        raise UsageError(f"the learning rate --lr must be a finite number > 0; got {lr!r}")
    if epochs is not None and (
        isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1
    ):
        raise UsageError(f"--epochs must be a whole number ≥ 1; got {epochs!r}")
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0
    ):
        raise UsageError(f"--seed must be a whole number ≥ 0; got {seed!r}")


def _check_clip_limits(
    clip_limits: Sequence[tuple[float, float] | None], targets: int
) -> list[tuple[float, float] | None]:
    """``clip_limits`` as a list of ``(lo, hi)`` with lo < hi, finite, or None, one per target."""
    if isinstance(clip_limits, (str, bytes)) or not isinstance(clip_limits, Sequence):
        raise UsageError(
            f"clip_limits must be a list with one (lo, hi) or None per target; got {clip_limits!r}"
        )
    if len(clip_limits) != targets:
        raise UsageError(f"clip_limits has {len(clip_limits)} entries for {targets} targets")
    checked: list[tuple[float, float] | None] = []
    for i, limits in enumerate(clip_limits):
        if limits is None:
            checked.append(None)
            continue
        try:
            lo, hi = (float(v) for v in limits)
        except (TypeError, ValueError):
            lo = hi = math.nan
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise UsageError(
                f"clip_limits[{i}] is {limits!r}; each entry is None or (lo, hi), two finite "
                "numbers with lo < hi: the values at which the target was clipped, e.g. "
                "(0.0, 1.0) for an 8- or 16-bit image read as [0, 1]"
            )
        checked.append((lo, hi))
    return checked


# --- preparing the pairs ------------------------------------------------------------------


def _as_list(arrays: ArrayOrArrays, what: str) -> list[np.ndarray]:
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


def _unit_warnings(
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


def _planes(array: np.ndarray, name: str) -> tuple[np.ndarray, bool]:
    """``array`` as float (H, W, C) under the pixel policy, and whether it was integer-stored."""
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


def _prepare_pair(
    x: np.ndarray,
    y: np.ndarray,
    ksize: tuple[int, int],
    limits: tuple[float, float] | None,
    keep_clipped: bool,
    names: tuple[str, str],
) -> _Pair:
    input_name, target_name = names
    xp, x_integer = _planes(x, input_name)
    yp, integer_stored = _planes(y, target_name)
    kh, kw = ksize
    h, w, c = xp.shape
    th, tw, tc = yp.shape
    if tc != c:
        raise LearnError(
            f"{input_name} has {c} channel{'s' * (c != 1)} but {target_name} has {tc}; input "
            "and target need the same channels (--gray compares both in grey levels)"
        )
    if kh > h or kw > w:
        raise LearnError(
            f"the {kh}x{kw} kernel is larger than {input_name} ({h}x{w}); the kernel must fit "
            f"inside every input: choose a --size of at most {h}x{w}"
        )
    if (th, tw) == (h, w):
        oy, ox = kh // 2, kw // 2
    elif (th, tw) == (h - kh + 1, w - kw + 1):
        oy, ox = 0, 0
    else:
        raise LearnError(
            f"{target_name} is {th}x{tw} but {input_name} is {h}x{w}: with a {kh}x{kw} kernel "
            f"the target must be {h}x{w} (same size) or {h - kh + 1}x{w - kw + 1} (valid "
            f"output){_shape_hint(h, w, th, tw, kh, kw)}"
        )
    dtype = np.float64 if np.float64 in (xp.dtype, yp.dtype) else np.float32
    src = writeable(np.ascontiguousarray(xp, dtype=dtype).reshape(h, w * c))
    target = writeable(np.ascontiguousarray(yp, dtype=dtype).reshape(th, tw * c))
    raw = None
    if x_integer and integer_stored and (keep_clipped or limits in (None, (0.0, 1.0))):
        top_y = int(np.iinfo(y.dtype).max)
        raw = _Raw(
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
    return _Pair(src, target, c, oy, ox, float(lo), float(hi), shift, input_name, raw)


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


def _nchunks(rows: int, unknowns: int) -> int:
    import numba

    threads = numba.get_num_threads()
    per_thread = 4 if unknowns <= 128 else 1
    return max(1, min(rows, per_thread * threads))


# --- the passes over the pixels -----------------------------------------------------------


CENTRE_RATIO = 100.0
"""The normal equations are summed from centred data when an input's mean is more than this
many times its range (max − min) away from 0."""

BAND_VALUES = 1 << 18
"""Values per band (2 MiB in float64) of the centred copies the normal equations are summed from."""


@dataclass(frozen=True)
class _Normal:
    """The normal equations of the pairs, summed from centred data.

    ``parts`` holds, for each pair, the (n + 2)² augmented matrix Σ v vᵀ of v = (x − c_p, 1,
    y − d_p) over its kept samples (x the n window values, y the target) and its centres c_p,
    d_p (the pair's means, or 0 and 0 when no input is far from 0; see :data:`CENTRE_RATIO`).
    Centred, the entries carry the variation of the data rather than n·N·c², beside which a
    variation of 10⁻⁶ of the values was lost (float matrices around 10⁵ lost their kernel).
    ``c`` and ``d`` are the centres averaged over the samples; ``gram`` is Σ v vᵀ of v = (x, 1,
    y), computed from the parts exactly by the change of coordinates (for the Hessian of
    gradient descent and the target's scale).
    """

    parts: tuple[tuple[np.ndarray, float, float], ...]
    c: float
    d: float
    gram: np.ndarray


def _shift_matrix(m: int, c: float, d: float) -> np.ndarray:
    """P such that v·P adds c to the window values and d to the target of v = (x, 1, y): the
    identity, with c and d in the row of the constant 1. Then Σ (vP)ᵀ(vP) = Pᵀ (Σ vᵀv) P."""
    p = np.eye(m)
    p[m - 2, : m - 2] = c
    p[m - 2, m - 1] = d
    return p


def _normal_equations(pairs: list[_Pair], kh: int, kw: int) -> tuple[_Normal, np.ndarray]:
    """The pairs' normal equations (see :class:`_Normal`) and the counts (kept, left out).

    When an input is far from 0 (:data:`CENTRE_RATIO`), each pair is centred on its own means
    (c_p, d_p) band by band (float64 copies of at most :data:`BAND_VALUES` values) for the
    jitted pass; otherwise the pass reads the pairs' own arrays, whole.
    """
    n = kh * kw
    m = n + 2
    counts = np.zeros(2, dtype=np.int64)
    parts = []
    means = [float(np.mean(p.src, dtype=np.float64)) for p in pairs]
    # centred only where it matters: a value far from 0 against its spread; otherwise the sums
    # are those of the raw data (exact answers such as the textbook's [1, −1] stay exact)
    centre = any(
        abs(c_p) > CENTRE_RATIO * float(np.ptp(p.src)) for c_p, p in zip(means, pairs, strict=True)
    )
    for p, c_p in zip(pairs, means, strict=True):
        d_p = p.shift
        if not centre:
            c_p = d_p = 0.0
        part = np.zeros((m, m))
        kept = int(counts[0])
        rows = p.src.shape[0] - kh + 1
        band = max(1, BAND_VALUES // p.src.shape[1]) if centre else rows
        for r0 in range(0, rows, band):
            r1 = min(rows, r0 + band)
            src = p.src[r0 : r1 + kh - 1]
            target = p.target[r0 + p.oy : r1 + p.oy]
            if centre:  # float64 copies of the band (the data's own rows otherwise)
                src = src.astype(np.float64)
                src -= c_p
                target = target.astype(np.float64)
                target -= d_p
            chunks = _nchunks(r1 - r0, n)
            compiled.call(
                "learn_normal_equations",
                (src, p.channels, target, 0, p.ox, kh, kw, p.lo - d_p, p.hi - d_p, chunks, part,
                 counts),
            )  # fmt: skip
        parts.append((part, c_p, d_p, int(counts[0]) - kept))
    return _combine(parts, m), counts


def _combine(parts: list[tuple[np.ndarray, float, float, int]], m: int) -> _Normal:
    """The :class:`_Normal` of the pairs' parts (augmented matrix, c_p, d_p, samples kept)."""
    total = sum(k for *_, k in parts)
    c = sum(c_p * k for _, c_p, _, k in parts) / total if total else 0.0
    d = sum(d_p * k for _, _, d_p, k in parts) / total if total else 0.0
    gram = np.zeros((m, m))
    for part, c_p, d_p, _ in parts:
        shift = _shift_matrix(m, c_p, d_p)
        gram += shift.T @ part @ shift
    return _Normal(tuple((g, c_p, d_p) for g, c_p, d_p, _ in parts), c, d, gram)


def _residuals(pairs: list[_Pair], weights: np.ndarray, b: float, gradient: bool) -> np.ndarray:
    """Per pair ``_jit.learn_residuals`` outputs, one row each (see there for the layout)."""
    kernel = np.ascontiguousarray(weights, dtype=np.float64)
    n = kernel.size
    out = np.zeros((len(pairs), n + 7))
    for k, p in enumerate(pairs):
        chunks = _nchunks(p.src.shape[0] - kernel.shape[0] + 1, n)
        compiled.call(
            "learn_residuals",
            (
                p.src,
                p.channels,
                p.target,
                p.oy,
                p.ox,
                kernel,
                float(b),
                p.lo,
                p.hi,
                p.shift,
                gradient,
                chunks,
                out[k],
            ),
        )
    return out


def _figures(pairs: list[_Pair], weights: np.ndarray, b: float) -> dict[str, Any]:
    """RMSE, largest error, R² and sample counts of the fit ``weights`` (correlation) + ``b``."""
    out = _residuals(pairs, weights, b, gradient=False)
    n = weights.size
    used = int(out[:, n + 3].sum())
    clipped = int(out[:, n + 4].sum())
    if used == 0:
        return {"used": 0, "clipped": clipped, "rmse": None, "max_error": None, "r2": None}
    sse = float(out[:, n + 1].sum())
    counts = out[:, n + 3]
    shifts = np.array([p.shift for p in pairs])
    s1, s2 = out[:, n + 5], out[:, n + 6]
    mean = float((s1 + counts * shifts).sum() / used)
    d = mean - shifts
    sst = float((s2 - 2 * d * s1 + counts * d * d).sum())
    return {
        "used": used,
        "clipped": clipped,
        "rmse": math.sqrt(sse / used),
        "max_error": float(out[:, n + 2].max()),
        "r2": 1.0 - sse / sst if sst > 0 else None,
    }


# --- the exact route for stored samples ---------------------------------------------------


EXACT_SUM = 1 << 53
"""float64 holds every integer below this exactly: no sum of one pass may reach it."""


@dataclass(frozen=True)
class _RawPart:
    """One pair's normal equations in stored units, exact: Σ v vᵀ of v = (x − c, 1, y − d)
    over its kept samples, as Python ints, with the integer centres c, d (0 when uncentred)."""

    gram: np.ndarray  # (n + 2, n + 2), dtype object
    c: int
    d: int
    top_x: int
    top_y: int
    kept: int
    left_out: int


def _exact_normal_equations(pairs: list[_Pair], kh: int, kw: int) -> tuple[_Normal, list[_RawPart]]:
    """The normal equations summed over the stored integers, exact, then in [0, 1] units.

    Every product and partial sum of integers is an integer, the same in any order while it
    stays below 2**53: so the jitted pass and its numpy twin (``convtool.twins.learn``, run while
    numba's cache is cold) give the same bytes. One pass sums fewer than 2**53 / top²
    samples; the passes are added as Python ints. Centring (:data:`CENTRE_RATIO`) is by the
    rounded means, which keeps the centred samples integers.
    """
    from convtool.twins import learn as learn_twins

    n = kh * kw
    m = n + 2
    raws = [p.raw for p in pairs]
    assert all(r is not None for r in raws)
    means = [float(np.mean(r.src, dtype=np.float64)) for r in raws if r is not None]
    centre = any(
        abs(mean) > CENTRE_RATIO * float(np.ptp(r.src))
        for mean, r in zip(means, raws, strict=True)
        if r is not None
    )
    exact: list[_RawPart] = []
    parts = []
    for p, r, mean in zip(pairs, raws, means, strict=True):
        assert r is not None
        c_p = round(mean) if centre else 0
        d_p = round(float(np.mean(r.target, dtype=np.float64))) if centre else 0
        total = np.zeros((m, m), dtype=object)
        counts = np.zeros(2, dtype=np.int64)
        rows = r.src.shape[0] - kh + 1
        length = (r.src.shape[1] // p.channels - kw + 1) * p.channels
        # rows of products per pass, with the kh − 1 rows below the last (the twin sums them)
        band = max(1, EXACT_SUM // (max(r.top_x, r.top_y) ** 2 * length) - (kh - 1))
        if centre:
            band = min(band, max(1, BAND_VALUES // r.src.shape[1]))
        for r0 in range(0, rows, band):
            r1 = min(rows, r0 + band)
            src, target = r.src[r0 : r1 + kh - 1], r.target[r0 + p.oy : r1 + p.oy]
            if centre:  # float64 copies of the band, still integers
                src = src.astype(np.float64) - c_p
                target = target.astype(np.float64) - d_p
            part = np.zeros((m, m))
            args = (src, p.channels, target, 0, p.ox, kh, kw, r.lo - d_p, r.hi - d_p,
                    _nchunks(r1 - r0, n), part, counts)  # fmt: skip
            compiled.run(
                "learn_normal_equations", args, learn_twins.learn_normal_equations, now=False
            )
            total += part.astype(np.int64).astype(object)
        kept = int(counts[0])
        exact.append(_RawPart(total, c_p, d_p, r.top_x, r.top_y, kept, int(counts[1])))
        scale = np.array([1.0 / r.top_x] * n + [1.0, 1.0 / r.top_y])
        unit = total.astype(np.float64) * np.outer(scale, scale)
        parts.append((unit, c_p / r.top_x, d_p / r.top_y, kept))
    return _combine(parts, m), exact


def _exact_figures(
    pairs: list[_Pair], parts: list[_RawPart], weights: np.ndarray, b: float
) -> dict[str, Any]:
    """The figures of :func:`_figures` from the exact normal equations: Σr² as the quadratic
    form of the fit over them, in exact rational arithmetic (correctly rounded, and 0 for an
    exact fit), Σy and Σy² likewise, and the largest error from a pass of its own."""
    from fractions import Fraction

    used = sum(q.kept for q in parts)
    clipped = sum(q.left_out for q in parts)
    if used == 0:
        return {"used": 0, "clipped": clipped, "rmse": None, "max_error": None, "r2": None}
    n = weights.size
    k = [Fraction(float(v)) for v in weights.ravel()]
    bias = Fraction(float(b))
    sum_k = sum(k, Fraction(0))
    sse = s1 = s2 = Fraction(0)
    for q in parts:
        sx, sy = q.top_x, q.top_y
        # sx·sy·r = w · v for v = (x − c, 1, y − d) and r = K·x/sx + b − y/sy
        w = [kp * sy for kp in k]
        w += [sy * q.c * sum_k + bias * sx * sy - sx * q.d, Fraction(-sx)]
        den = math.lcm(*(f.denominator for f in w))
        wi = np.array([int(f * den) for f in w], dtype=object)
        sse += Fraction(int(wi @ (q.gram @ wi)), (den * sx * sy) ** 2)
        count, sum_y, sum_yy = q.gram[n, n], q.gram[n, n + 1], q.gram[n + 1, n + 1]
        s1 += Fraction(sum_y + count * q.d, sy)
        s2 += Fraction(sum_yy + 2 * q.d * sum_y + count * q.d**2, sy**2)
    sst = s2 - s1 * s1 / used
    return {
        "used": used,
        "clipped": clipped,
        "rmse": math.sqrt(float(sse / used)),
        "max_error": _largest_error(pairs, weights, b),
        "r2": float(1 - sse / sst) if sst > 0 else None,
    }


def _largest_error(pairs: list[_Pair], weights: np.ndarray, b: float) -> float:
    """max |r| over the kept samples, from the stored integers in the target's stored units."""
    from convtool.twins import learn as learn_twins

    largest = 0.0
    kh = weights.shape[0]
    for p in pairs:
        r = p.raw
        assert r is not None
        kernel = np.ascontiguousarray(weights * (r.top_y / r.top_x), dtype=np.float64)
        out = np.zeros(1)
        chunks = _nchunks(r.src.shape[0] - kh + 1, weights.size)
        args = (r.src, p.channels, r.target, p.oy, p.ox, kernel, float(b) * r.top_y, r.lo, r.hi,
                chunks, out)  # fmt: skip
        compiled.run("learn_largest_error", args, learn_twins.learn_largest_error, now=False)
        largest = max(largest, float(out[0]) / r.top_y)
    return largest


# --- least squares ------------------------------------------------------------------------


def _system(gram: np.ndarray, n: int, bias: bool) -> tuple[np.ndarray, np.ndarray]:
    """The normal equations A z = c for z = weights (and the bias) from the augmented matrix."""
    idx = list(range(n + 1)) if bias else list(range(n))
    return gram[np.ix_(idx, idx)], gram[idx, n + 1]


def _scaled_eigen(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """D⁻¹AD⁻¹ = V diag(λ) Vᵀ with D = √diag(A) (1 where 0); returns λ, V, d, and the mask of
    eigenvalues above the rank tolerance."""
    d = np.sqrt(np.diag(a).copy())
    d[d == 0] = 1.0
    lam, v = np.linalg.eigh(a / np.outer(d, d))
    top = float(lam.max()) if lam.size else 0.0
    keep = lam > RANK_RTOL * top if top > 0 else np.zeros(lam.shape, dtype=bool)
    return lam, v, d, keep


def _reparametrised(normal: _Normal, n: int, bias: bool) -> tuple[np.ndarray, ...]:
    """The least-squares problem in coordinates θ where it is well conditioned.

    For a pair centred on (c_p, d_p), with x'' = x − c_p and y'' = y − d_p, the residual
    x·K + b − y is x''·K + c_p·ΣK + b − d_p − y'' = v''·(L_p θ + a_p) for v'' = (x'', 1, y'').
    Centred data take θ = (K_0 … K_{n−2}, u = ΣK) with K = Tθ, so that the large c_p multiplies
    one unknown only, and with a bias also β = b + c·u − d (c, d the common centres), so that
    the bias row carries only c_p − c. Uncentred data (c_p = 0) take θ = K (and b). Returns the
    system A θ = r summed over the pairs and the map back z = Sθ + z0 (z = K, or (K, b)).
    """
    m = n + 2
    k = n + int(bias)
    tmat = np.eye(n)
    if any(c_p or d_p for _, c_p, d_p in normal.parts):
        tmat[n - 1, : n - 1] = -1.0  # K_{n−1} = u − Σ_{p<n−1} K_p
    smat = np.eye(k)
    smat[:n, :n] = tmat
    z0 = np.zeros(k)
    if bias:
        smat[n, n - 1] = -normal.c  # b = β − c·u + d
        z0[n] = normal.d
    a = np.zeros((k, k))
    r = np.zeros(k)
    for g, c_p, d_p in normal.parts:
        lmat = np.zeros((m, k))
        lmat[:n, :n] = tmat
        a0 = np.zeros(m)
        a0[n + 1] = -1.0
        if bias:
            lmat[n, n - 1] = c_p - normal.c
            lmat[n, n] = 1.0
            a0[n] = -(d_p - normal.d)
        else:
            lmat[n, n - 1] = c_p
            a0[n] = -d_p
        a += lmat.T @ g @ lmat
        r -= lmat.T @ (g @ a0)
    return a, r, smat, z0


def _rank(normal: _Normal, n: int, bias: bool) -> int:
    a, *_ = _reparametrised(normal, n, bias)
    return int(_scaled_eigen(a)[3].sum())


def _solve(normal: _Normal, n: int, bias: bool) -> tuple[np.ndarray, int]:
    """The minimum-norm least-squares solution of the normal equations, and their rank.

    The system, in the coordinates of :func:`_reparametrised`, is scaled to a unit diagonal (so
    the tolerance does not depend on the units of each unknown) and solved through its
    eigendecomposition, dropping eigenvalues below ``RANK_RTOL`` × the largest. When some are
    dropped the solution set is z + null; its element of least norm (in the original units:
    weights and bias) is z projected off the null space.
    """
    a, r, smat, z0 = _reparametrised(normal, n, bias)
    lam, v, d, keep = _scaled_eigen(a)
    vk = v[:, keep]
    theta = (vk @ ((vk.T @ (r / d)) / lam[keep])) / d
    z = smat @ theta + z0
    if not keep.all():
        null = smat @ (v[:, ~keep] / d[:, np.newaxis])
        q, _ = np.linalg.qr(null)
        z = z - q @ (q.T @ z)
    return z, int(keep.sum())


def _rank_warning(
    rank: int,
    unknowns: int,
    used: int,
    pairs: list[_Pair],
    kh: int,
    kw: int,
    bias: bool,
    method: str,
) -> str:
    if used < unknowns:
        why = f"only {used} target sample{'s' * (used != 1)} could be used"
    elif all(_flat(p) for p in pairs):
        fixed = "value × Σ weights + bias" if bias else "the sum of the weights"
        why = (
            "the input is flat (each channel holds a single value), which fixes only "
            f"{fixed}, not the layout of the weights"
        )
    else:
        why = (
            "the pixels used do not vary enough (a ramp, stripes or a nearly flat image) to "
            "tell the unknowns apart"
        )
    what = f"{kh}x{kw} weights" + (" and the bias" if bias else "")
    answer = (
        "the minimum-norm solution is given"
        if method == "lstsq"
        else "gradient descent leaves the undetermined part where its random start put it"
    )
    return (
        f"the data determine only {rank} of the {unknowns} unknowns ({what}): {why}; {answer}. "
        "Use an input with more detail, more pairs, or a smaller --size"
    )


def _flat(pair: _Pair) -> bool:
    planes = pair.src.reshape(pair.src.shape[0], -1, pair.channels)
    return bool((planes.min(axis=(0, 1)) == planes.max(axis=(0, 1))).all())


# --- gradient descent ---------------------------------------------------------------------


GD_CONVERGED = 1.01
"""Gradient descent counts as converged when its RMSE is within this factor of the least-squares
fit's, or below GD_FLOOR × the RMS of the target (the comparison is made when the normal matrix
is at hand, i.e. with the default learning rate)."""

GD_FLOOR = 1e-4


def _convergence_warning(
    pairs: list[_Pair], normal: _Normal, kh: int, kw: int, bias: bool, rmse: float, epochs: int
) -> list[str]:
    """A warning when gradient descent ended well above the least-squares minimum."""
    n = kh * kw
    gram = normal.gram
    z, _ = _solve(normal, n, bias)
    best = _figures(pairs, z[:n].reshape(kh, kw), float(z[n]) if bias else 0.0)["rmse"]
    # an RMSE under GD_FLOOR × the target's RMS counts as converged, whatever the minimum
    floor = GD_FLOOR * math.sqrt(max(float(gram[n + 1, n + 1]), 0.0) / max(float(gram[n, n]), 1.0))
    if best is None or rmse <= max(GD_CONVERGED * best, floor):
        return []
    return [
        f"gradient descent stopped after {epochs} epochs at RMSE {rmse:.6g}, while the "
        f"least-squares kernel reaches {best:.6g}: the weights have not converged (blurs and "
        "other smooth kernels converge slowly); use more --epochs, or --method lstsq (the "
        "default) for the exact fit"
    ]


def _default_lr(gram: np.ndarray, n: int, bias: bool) -> float:
    """1/L, L the largest eigenvalue of the loss's Hessian 2·A: the step that always descends."""
    a, _ = _system(gram, n, bias)
    top = float(np.linalg.eigvalsh(2.0 * a)[-1])
    return 1.0 / top if top > 0 else 1.0


def _descend(
    pairs: list[_Pair],
    kh: int,
    kw: int,
    bias: bool,
    lr: float,
    epochs: int,
    seed: int | None,
    progress: Progress | None,
    history: list[float],
) -> tuple[np.ndarray, float]:
    """The textbook's loop: loss = Σ (Ŷ − Y)², then K ← K − lr · ∇K (and b ← b − lr · ∂b)."""
    n = kh * kw
    rng = np.random.default_rng(seed)
    weights = rng.normal(0.0, INIT_STD, size=(kh, kw))
    b = 0.0
    for epoch in range(1, epochs + 1):
        out = _residuals(pairs, weights, b, gradient=True).sum(axis=0)
        loss = float(out[n + 1])
        if not math.isfinite(loss) or not np.isfinite(out[: n + 1]).all():
            raise LearnError(
                f"gradient descent diverged at epoch {epoch} (loss {loss:g}) with learning rate "
                f"{lr:g}; use a smaller --lr, or leave it out for the step that always descends"
            )
        history.append(loss)
        if progress is not None:
            progress(epoch, loss)
        weights = weights - lr * 2.0 * out[:n].reshape(kh, kw)
        if bias:
            b -= lr * 2.0 * float(out[n])
    if not (np.isfinite(weights).all() and math.isfinite(b)):
        raise LearnError(
            f"gradient descent diverged in its last step with learning rate {lr:g}; use a "
            "smaller --lr, or leave it out for the step that always descends"
        )
    return weights, b
