"""Fitting the kernel that turned one image into another: the options, the fit and its result.

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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convtool.choices import CHANNEL_MODES, DEFAULT_EPOCHS, LEARN_METHODS
from convtool.errors import LearnError, UsageError
from convtool.kernels.identify import Match, closest
from convtool.kernels.layer import Layer
from convtool.kernels.origin import anchor_cells, check_origin
from convtool.kernels.value import MAX_KERNEL_SIDE, Kernel
from convtool.learn.gd import OVERFLOW, Progress, convergence_warning, default_lr, descend
from convtool.learn.lstsq import (
    Normal,
    RawPart,
    exact_normal_equations,
    normal_equations,
    normal_rank,
    rank_warning,
    solve,
)
from convtool.learn.pairs import (
    MAX_LEARN_WEIGHTS,
    ArrayOrArrays,
    Pair,
    as_list,
    pair_work,
    prepare_pair,
    unit_warnings,
)
from convtool.learn.report import exact_figures, fit_figures
from convtool.learn.work import Meter, check_time, epoch_seconds, normal_seconds, shares

MOST_CLIPPED = 0.5
"""Warn when more than this fraction of the aligned target samples was left out as clipped."""


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
    (what the textbook prints); ``epochs`` is how many ran, fewer than asked when the loss
    stopped falling first (``stopped_early``, see :func:`convtool.learn.gd.stalled`).
    """

    kernel: Kernel | Layer
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
    stopped_early: bool = False
    channels: str = "shared"
    closest: tuple[Match | None, ...] = ()

    def _closest_json(self) -> Any:
        """The named family (``spec``, ``scale``, ``convolve``, ``error``) or None; for
        ``per``, one per channel; for ``mix``, None (a layer's kernels are not named)."""
        found = [m.as_json() if m is not None else None for m in self.closest]
        if self.channels == "per":
            return found
        return found[0] if found else None

    @property
    def weights(self) -> np.ndarray:
        return self.kernel.weights

    @property
    def bias(self) -> float:
        """The bias (a shared kernel's; see ``biases`` for a layer's)."""
        return self.kernel.bias if isinstance(self.kernel, Kernel) else 0.0

    @property
    def biases(self) -> np.ndarray:
        """The bias per output channel (a shared kernel's once)."""
        if isinstance(self.kernel, Kernel):
            return np.array([self.kernel.bias])
        return self.kernel.biases

    def as_dict(self) -> dict[str, Any]:
        """The result as plain JSON-ready values (what ``convtool learn --json`` prints)."""
        return {
            "kernel": self.weights.tolist(),
            "bias": self.bias if isinstance(self.kernel, Kernel) else self.biases.tolist(),
            "size": list(self.kernel.shape),
            "channels": self.channels,
            "closest": self._closest_json(),
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
            "stopped_early": self.stopped_early,
            "loss_history": list(self.loss_history),
        }


_SIZE_RE = re.compile(r"^\s*(\d{1,9})\s*(?:[xX×]\s*(\d{1,9}))?\s*$", re.ASCII)


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


def target_anchor(
    shape: tuple[int, int], origin: int | tuple[int, int] | None, convolve: bool
) -> tuple[int, int] | None:
    """The cell of the fitted (correlation) kernel on each pixel of a same-size target; with
    ``convolve``, the cell of the flipped kernel, as ``convolve(..., origin)`` anchors it."""
    if origin is None:
        return None
    cy, cx = anchor_cells(shape, check_origin(origin))
    return (shape[0] - 1 - cy, shape[1] - 1 - cx) if convolve else (cy, cx)


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
    origin: int | tuple[int, int] | None = None,
    meter: Meter | None = None,
    allow_long: bool = False,
    channels: str = "shared",
) -> LearnResult:
    """Fit the ``size`` kernel K (and, with ``bias``, b) minimising Σ (X ⋆ K + b − Y)².

    ``inputs`` and ``targets``: one array each, or equally long lists of arrays (pairs may
    differ in size). Arrays are (H, W) or (H, W, C), input and target with the same C; one
    kernel serves every channel. uint8 and uint16 arrays follow the pixel policy: scaled to
    [0, 1] (/ 255, / 65535), and a target's extreme stored values count as clipped. Float
    arrays are taken as they are, never clipped; ``clip_limits`` (one ``(lo, hi)`` or None per
    target) marks float targets that were stored as integers, e.g. images read by
    ``convtool.io.read.read_picture`` (``(0.0, 1.0)`` when ``integer_stored``).

    A target of the input's size is a same-size output anchored at (kh//2, kw//2), of which
    only the pixels whose window lies inside the input are used; a target of
    (H − kh + 1) × (W − kw + 1) is a ``valid`` output. ``size`` is ``"HxW"``, ``N`` or
    ``(kh, kw)``.

    ``method="lstsq"`` solves exactly (minimum-norm, with a warning, when the data leave the
    kernel undetermined). ``method="gd"`` runs ``epochs`` (default :data:`DEFAULT_EPOCHS`)
    steps of ``K ← K − lr · ∇K`` on the summed loss from N(0, 0.01²) (``seed``), with
    ``lr`` by default 1/L, L the largest eigenvalue of the loss's Hessian (2·XᵀX, found from
    the normal matrix), which guarantees descent; ``progress(epoch, loss)`` is called with the
    loss at the start of each epoch; it stops early once the loss stops moving (by at most
    1e-12 of itself over 10 epochs). ``convolve`` returns the kernel in convolution
    orientation (what ``convolve``/``apply --convolve`` expect). Samples of integer-stored
    targets at their extremes are left out unless ``keep_clipped``. ``origin`` (scipy's, as in
    ``correlate``/``convolve``) is where a same-size target's kernel was anchored.

    The work is estimated first: a fit estimated at more than ten minutes is refused (a
    LearnError saying how long) unless ``allow_long``; ``meter(fraction)`` is told the
    fraction done, now and then, when the estimate exceeds a second.

    >>> x = np.ones((6, 8)); x[:, 2:6] = 0
    >>> y = x[:, :-1] - x[:, 1:]                      # the textbook's edge map, 6x7
    >>> learn_kernel(x, y, "1x2").weights.round(12)
    array([[ 1., -1.]])
    """
    check_options(method, lr=lr, epochs=epochs, seed=seed)
    if channels not in CHANNEL_MODES:
        raise UsageError(
            f"unknown --channels {channels!r}; choose one of {', '.join(CHANNEL_MODES)}"
        )
    if channels != "shared":
        from convtool.learn.layer import learn_layer

        with np.errstate(over="ignore", invalid="ignore"):
            return learn_layer(
                _learn, inputs, targets, size, channels, bias=bias, method=method,
                convolve=convolve, keep_clipped=keep_clipped, clip_limits=clip_limits, lr=lr,
                epochs=epochs, seed=seed, names=names, meter=meter, allow_long=allow_long,
                origin=origin,
            )  # fmt: skip
    # finite data near the float64 limit overflow in sums: refused with OVERFLOW, not warned
    with np.errstate(over="ignore", invalid="ignore"):
        return _learn(
            inputs, targets, size, bias, method, convolve, keep_clipped, clip_limits, lr,
            epochs, seed, progress, names, meter, allow_long, origin,
        )  # fmt: skip


def _learn(
    inputs: ArrayOrArrays,
    targets: ArrayOrArrays,
    size: str | int | tuple[int, int],
    bias: bool,
    method: str,
    convolve: bool,
    keep_clipped: bool,
    clip_limits: Sequence[tuple[float, float] | None] | None,
    lr: float | None,
    epochs: int | None,
    seed: int | None,
    progress: Progress | None,
    names: Sequence[tuple[str, str]] | None,
    meter: Meter | None,
    allow_long: bool,
    origin: int | tuple[int, int] | None = None,
) -> LearnResult:
    """:func:`learn_kernel` after its options are checked."""
    kh, kw = parse_size(size)
    xs, ys, clip_limits, names = _checked_pairs(inputs, targets, clip_limits, names)
    pairs = [
        prepare_pair(
            x,
            y,
            (kh, kw),
            None if clip_limits is None else clip_limits[i],
            keep_clipped,
            names[i],
            target_anchor((kh, kw), origin, convolve),
        )
        for i, (x, y) in enumerate(zip(xs, ys, strict=True))
    ]
    unknowns = kh * kw + int(bias)
    warnings = unit_warnings(xs, ys, clip_limits, names)
    epochs = DEFAULT_EPOCHS if epochs is None else int(epochs)
    meters = _plan(pairs, kh, kw, method, lr, epochs, allow_long, meter)
    fit = _fit(pairs, kh, kw, bias, method, lr, epochs, seed, progress, meters)
    figures = fit.figures
    used, clipped = figures["used"], figures["clipped"]
    aligned = used + clipped
    if clipped and clipped > MOST_CLIPPED * aligned:
        warnings.append(
            f"{clipped} of the {aligned} target samples ({100 * clipped / aligned:.0f}%) sit at "
            "0 or at the maximum of their integer range and were left out as clipped, so the fit "
            f"rests on the other {used}; if those values are real data rather than clipping (a "
            "binary mask, say), use --keep-clipped (keep_clipped=True)"
        )
    if fit.rank is not None and fit.rank < unknowns:
        warnings.append(rank_warning(fit.rank, unknowns, used, pairs, kh, kw, bias, method))
    if method == "gd" and fit.normal is not None and figures["rmse"] is not None:
        warnings += convergence_warning(
            pairs, fit.normal, kh, kw, bias, figures["rmse"], fit.epochs
        )
    weights = fit.weights[::-1, ::-1] if convolve else fit.weights
    label = f"learned {kh}x{kw} ({method}{', convolution' if convolve else ''})"
    return LearnResult(
        kernel=Kernel(weights, label, fit.bias),
        method=method,
        convolve=convolve,
        rmse=figures["rmse"],
        max_error=figures["max_error"],
        r2=figures["r2"],
        pixels_used=used,
        pixels_clipped=clipped,
        unknowns=unknowns,
        rank=fit.rank,
        warnings=tuple(warnings),
        loss_history=tuple(fit.history),
        lr=fit.lr if method == "gd" else None,
        epochs=fit.epochs if method == "gd" else None,
        stopped_early=method == "gd" and fit.epochs < epochs,
        closest=(closest(weights),),
    )


def _checked_pairs(
    inputs: ArrayOrArrays,
    targets: ArrayOrArrays,
    clip_limits: Sequence[tuple[float, float] | None] | None,
    names: Sequence[tuple[str, str]] | None,
) -> tuple[
    list[np.ndarray],
    list[np.ndarray],
    list[tuple[float, float] | None] | None,
    Sequence[tuple[str, str]],
]:
    """The inputs and targets as lists of arrays, with checked clip limits and pair names."""
    xs = as_list(inputs, "inputs")
    ys = as_list(targets, "targets")
    if len(xs) != len(ys):
        raise LearnError(
            f"{len(xs)} inputs but {len(ys)} targets; give them in pairs (INPUT TARGET ...)"
        )
    if not xs:
        raise LearnError("no pairs given; learning a kernel needs at least one INPUT TARGET pair")
    limits = None if clip_limits is None else _check_clip_limits(clip_limits, len(ys))
    if names is None:
        names = [(f"input {i + 1}", f"target {i + 1}") for i in range(len(xs))]
    elif len(names) != len(xs) or not all(
        isinstance(pair, (tuple, list)) and len(pair) == 2 for pair in names
    ):
        raise UsageError(
            f"names needs one (input name, target name) pair for each of the {len(xs)} pairs; "
            f"got {names!r}"
        )
    return xs, ys, limits, names


@dataclass(frozen=True)
class _Fit:
    """What a method found: the weights (correlation) and bias, the normal equations when they
    were computed, their rank, gd's losses, learning rate and epochs, and the figures."""

    weights: np.ndarray
    bias: float
    normal: Normal | None
    rank: int | None
    history: list[float]
    lr: float | None
    epochs: int
    figures: dict[str, Any]


def _fit(
    pairs: list[Pair],
    kh: int,
    kw: int,
    bias: bool,
    method: str,
    lr: float | None,
    epochs: int,
    seed: int | None,
    progress: Progress | None,
    meters: list[Meter | None],
) -> _Fit:
    """Solve (``lstsq``, exactly over stored integers when every pair has them) or descend;
    ``meters`` show the progress of the normal equations and of the descent."""
    n = kh * kw
    normal: Normal | None = None
    rank: int | None = None
    history: list[float] = []
    exact = method == "lstsq" and all(p.raw is not None for p in pairs)
    raw_parts: list[RawPart] = []
    if exact:
        normal, raw_parts = exact_normal_equations(pairs, kh, kw, meters[0])
    elif method == "lstsq" or lr is None:
        normal, _counts = normal_equations(pairs, kh, kw, meters[0])
    if normal is not None:
        check_finite(normal)
    if method == "lstsq":
        assert normal is not None
        z, rank = solve(normal, n, bias)
        weights = z[:n].reshape(kh, kw)
        b = float(z[n]) if bias else 0.0
    else:
        if normal is not None:
            lr = default_lr(normal.gram, n, bias)
            rank = normal_rank(normal, n, bias)
        assert lr is not None
        weights, b = descend(pairs, kh, kw, bias, lr, epochs, seed, progress, history, meters[1])
    if exact:
        figures = exact_figures(pairs, raw_parts, weights, b)
    else:
        figures = fit_figures(pairs, weights, b)
    ran = len(history) if method == "gd" else epochs
    return _Fit(weights, b, normal, rank, history, lr, ran, figures)


def _plan(
    pairs: list[Pair],
    kh: int,
    kw: int,
    method: str,
    lr: float | None,
    epochs: int,
    allow_long: bool,
    meter: Meter | None,
) -> list[Meter | None]:
    """Estimate the fit's time, refuse it past :data:`~convtool.learn.work.LONG_FIT` seconds
    unless ``allow_long``, and split ``meter`` between its stages (normal equations, descent,
    figures)."""
    works = [pair_work(p, kh, kw) for p in pairs]
    normal = normal_seconds(works, kh, kw) if method == "lstsq" or lr is None else 0.0
    epoch = epoch_seconds(works, kh, kw)
    descent = epochs * epoch if method == "gd" else 0.0
    samples = sum(w.samples for w in works)
    if method == "gd":
        what = f"gradient descent for {epochs} epochs ({samples} samples, {kh}x{kw} kernel)"
        hint = (
            "give fewer --epochs (it also stops by itself once the loss stops moving), or use "
            "--method lstsq, the exact fit"
        )
    else:
        what = f"the least-squares fit of a {kh}x{kw} kernel to {samples} samples"
        hint = "use a smaller --size or smaller images"
    check_time(normal + descent + epoch, what, allow_long, hint)
    return shares(meter, [normal, descent, epoch])


def check_finite(normal: Normal) -> None:
    """Refuse normal equations whose sums overflowed (finite data near the float64 limit)."""
    if all(np.isfinite(g).all() for g, _, _ in normal.parts) and np.isfinite(normal.gram).all():
        return
    raise LearnError(OVERFLOW)


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
