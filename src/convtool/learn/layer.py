"""``--channels per`` and ``--channels mix``: learning per-channel kernels or a full layer.

``per`` fits one kernel and bias per channel: the shared fit of each channel on its own (its
own normal equations, routes, clipped samples and figures), gathered into a
:class:`~convtool.kernels.layer.Layer` of shape (C, kh, kw). ``mix`` fits the layer
(C_out, C_in, kh, kw) of :mod:`convtool.learn.mix`, C_out taken from the targets.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from convtool.choices import DEFAULT_EPOCHS
from convtool.errors import LearnError
from convtool.kernels.layer import Layer
from convtool.learn.mix import descend_layer, layer_figures, layer_normals, mix_pair, solve_layer
from convtool.learn.pairs import ArrayOrArrays, as_list
from convtool.learn.work import EPOCH_OVERHEAD, PATCH_SECONDS, check_time, shares

if TYPE_CHECKING:
    from convtool.learn.fit import LearnResult


def learn_layer(
    shared_fit: Callable[..., LearnResult],
    inputs: ArrayOrArrays,
    targets: ArrayOrArrays,
    size: Any,
    channels: str,
    **options: Any,
) -> LearnResult:
    """The ``per`` or ``mix`` fit (``shared_fit`` is the shared one, run per channel)."""
    from convtool.learn.fit import parse_size

    xs, ys = as_list(inputs, "inputs"), as_list(targets, "targets")
    if len(xs) != len(ys) or not xs:
        raise LearnError(
            f"{len(xs)} inputs but {len(ys)} targets; give them in pairs (INPUT TARGET ...)"
        )
    kh, kw = parse_size(size)
    if channels == "per":
        return _per(shared_fit, xs, ys, (kh, kw), options)
    return _mix(xs, ys, (kh, kw), options)


def _channel(a: np.ndarray, c: int) -> np.ndarray:
    return a if a.ndim == 2 else a[..., c]


def _per(
    shared_fit: Callable[..., LearnResult],
    xs: list[np.ndarray],
    ys: list[np.ndarray],
    ksize: tuple[int, int],
    options: dict[str, Any],
) -> LearnResult:
    from convtool.learn.fit import LearnResult

    counts = {1 if x.ndim == 2 else x.shape[2] for x in xs + ys}
    if len(counts) != 1:
        raise LearnError(
            "--channels per fits one kernel per channel: every input and target needs the same "
            f"number of channels; got {sorted(counts)}"
        )
    (c,) = counts
    meters = shares(options.pop("meter"), [1.0] * c)
    fits = [
        shared_fit(
            [_channel(x, i) for x in xs],
            [_channel(y, i) for y in ys],
            ksize,
            progress=None,
            meter=meters[i],
            **options,
        )
        for i in range(c)
    ]
    used = sum(f.pixels_used for f in fits)
    sse = sum((f.rmse or 0.0) ** 2 * f.pixels_used for f in fits)
    sst = sum(
        (f.rmse or 0.0) ** 2 * f.pixels_used / (1 - f.r2) for f in fits if f.r2 not in (None, 1.0)
    )
    first = fits[0]
    weights = np.array([f.kernel.weights for f in fits])
    layer = Layer(weights, [f.bias for f in fits], f"learned {c} per-channel kernels")
    warnings = [f"channel {i}: {w}" for i, f in enumerate(fits) for w in f.warnings]
    epochs = [f.epochs for f in fits if f.epochs is not None]
    return LearnResult(
        kernel=layer,
        method=first.method,
        convolve=first.convolve,
        rmse=math.sqrt(sse / used) if used else None,
        max_error=max((f.max_error for f in fits if f.max_error is not None), default=None),
        r2=1.0 - sse / sst
        if sst > 0
        else min((f.r2 for f in fits if f.r2 is not None), default=None),
        pixels_used=used,
        pixels_clipped=sum(f.pixels_clipped for f in fits),
        unknowns=sum(f.unknowns for f in fits),
        rank=None if any(f.rank is None for f in fits) else sum(f.rank or 0 for f in fits),
        warnings=tuple(warnings),
        loss_history=tuple(np.sum([f.loss_history for f in fits], axis=0).tolist())
        if all(len(f.loss_history) == len(first.loss_history) for f in fits)
        else (),
        lr=first.lr,
        epochs=max(epochs) if epochs else None,
        stopped_early=any(f.stopped_early for f in fits),
        channels="per",
        closest=tuple(f.closest[0] if f.closest else None for f in fits),
    )


def _mix(
    xs: list[np.ndarray],
    ys: list[np.ndarray],
    ksize: tuple[int, int],
    options: dict[str, Any],
) -> LearnResult:
    from convtool.learn.fit import LearnResult, target_anchor

    kh, kw = ksize
    anchor = target_anchor(ksize, options.get("origin"), bool(options["convolve"]))
    names: Sequence[tuple[str, str]] | None = options.get("names")
    if names is None:
        names = [(f"input {i + 1}", f"target {i + 1}") for i in range(len(xs))]
    limits = options.get("clip_limits") or [None] * len(xs)
    pairs = [
        mix_pair(x, y, ksize, limits[i], options["keep_clipped"], names[i], anchor)
        for i, (x, y) in enumerate(zip(xs, ys, strict=True))
    ]
    c_in = {p.x.shape[2] for p in pairs}
    c_out = {p.y.shape[2] for p in pairs}
    if len(c_in) != 1 or len(c_out) != 1:
        raise LearnError(
            "--channels mix fits one layer: every input needs the same channels, and every "
            f"target too; got inputs of {sorted(c_in)} and targets of {sorted(c_out)} channels"
        )
    n = pairs[0].x.shape[2] * kh * kw
    bias, method = options["bias"], options["method"]
    epochs = DEFAULT_EPOCHS if options.get("epochs") is None else int(options["epochs"])
    samples = sum(p.y.shape[0] * p.y.shape[1] for p in pairs)
    left_out = sum(int(p.kept.size - np.count_nonzero(p.kept)) for p in pairs)
    # every sample adds its first block row (:mod:`convtool.learn.runs`); each left out, n²
    strips = next(iter(c_in)) * kh + 1 + next(iter(c_out))
    gram = PATCH_SECONDS * (samples * strips * n + left_out * (n + 1) ** 2)
    descent = epochs * (EPOCH_OVERHEAD + 1e-9 * len(c_out) * n**2) if method == "gd" else 0.0
    check_time(
        gram + descent,
        f"the fit of a {next(iter(c_in))}->{next(iter(c_out))} layer of {kh}x{kw} kernels",
        options["allow_long"],
        "use a smaller --size, smaller images, or fewer --epochs",
    )
    meters = shares(options.get("meter"), [gram, descent])
    normals = layer_normals(pairs, kh, kw, meters[0])
    if not all(np.isfinite(nm.gram).all() for nm in normals):
        from convtool.learn.gd import OVERFLOW

        raise LearnError(OVERFLOW)
    if method == "gd":
        fit = descend_layer(
            normals, n, bias, options.get("lr"), epochs, options.get("seed"), meters[1]
        )
    else:
        fit = solve_layer(normals, n, bias)
    figures = layer_figures(pairs, normals, fit.weights, fit.biases, kh, kw)
    weights = fit.weights.reshape(len(normals), -1, kh, kw)
    convolve = bool(options["convolve"])
    if convolve:
        weights = weights[..., ::-1, ::-1]
    size = f"{weights.shape[1]}->{weights.shape[0]} layer of {kh}x{kw}"
    layer = Layer(weights, fit.biases, f"learned {size} ({method})")
    unknowns = len(normals) * (n + int(bias))
    return LearnResult(
        kernel=layer,
        method=method,
        convolve=convolve,
        rmse=figures["rmse"],
        max_error=figures["max_error"],
        r2=figures["r2"],
        pixels_used=int(figures["used"] or 0),
        pixels_clipped=int(figures["clipped"] or 0),
        unknowns=unknowns,
        rank=sum(fit.ranks) if fit.ranks else None,
        warnings=(),
        loss_history=tuple(fit.history),
        lr=fit.lr,
        epochs=fit.epochs if method == "gd" else None,
        stopped_early=method == "gd" and fit.epochs < epochs,
        channels="mix",
    )
