"""Learning a full convolutional layer (``--channels mix``): out[o] = Σ_i X[i] ⋆ K[o, i] + b[o].

Each output channel has C_in·kh·kw weights (and a bias). Their normal equations share one Gram
matrix, Σ v vᵀ of v = (the C_in·kh·kw window values, 1) over the valid windows: it is summed
once, every row of samples a run (:mod:`convtool.learn.runs`: its first block row from bands of
column strips, no patch matrix; memory O((C_in·kh·kw)²) and a band whatever the image size), and
each output subtracts the windows of its own samples left out as clipped. 8- and 16-bit arrays
are summed as stored, exact integers, and scaled once. Least squares
solves each output's system as ``lstsq.solve`` does; gradient descent runs the textbook's step
K ← K − lr·∇K, the gradient 2(A w − r) read off the same sums (the summed loss's gradient,
without a pass over the pixels per epoch).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from convtool.errors import LearnError
from convtool.learn.gd import INIT_STD, OVERFLOW, stalled
from convtool.learn.lstsq import Normal, solve
from convtool.learn.pairs import as_planes, shaped, target_offset
from convtool.learn.runs import Sums, add_masked, windows
from convtool.learn.work import Meter

BLOCK_VALUES = 1 << 20
"""float64 values (8 MiB) a band of column strips holds at most."""


@dataclass(frozen=True)
class MixPair:
    """One pair for a layer: the input (H, W, C_in), the aligned target (Ho, Wo, C_out), which
    target samples are kept (Ho, Wo, C_out), and the scales that take each array to the pixel
    policy's units: 8- and 16-bit arrays stay as stored (their sums are then exact integers),
    scaled by 1/255 or 1/65535 once summed; float arrays are taken as they are (scale 1)."""

    x: np.ndarray
    y: np.ndarray
    kept: np.ndarray
    x_scale: float = 1.0
    y_scale: float = 1.0


def _stored(array: np.ndarray, name: str) -> tuple[np.ndarray, float]:
    """(H, W, C) planes: 8/16-bit as stored, with the scale to [0, 1]; others as floats."""
    a = shaped(array, name)
    if a.dtype in (np.uint8, np.uint16):
        return a, 1.0 / float(np.iinfo(a.dtype).max)
    planes, _ = as_planes(a, name)
    return planes, 1.0


def mix_pair(
    x: np.ndarray,
    y: np.ndarray,
    ksize: tuple[int, int],
    limits: tuple[float, float] | None,
    keep_clipped: bool,
    names: tuple[str, str],
    anchor: tuple[int, int] | None = None,
) -> MixPair:
    """Planes under the pixel policy, the target aligned as ``learn`` aligns it (same size:
    anchored at ``anchor``, by default (kh//2, kw//2); or valid), its clipped samples marked."""
    input_name, target_name = names
    xp, x_scale = _stored(x, input_name)
    yp, y_scale = _stored(y, target_name)
    integer_stored = y_scale != 1.0
    kh, kw = ksize
    h, w, _ = xp.shape
    cy, cx = target_offset((h, w), yp.shape[:2], ksize, names, anchor)
    yp = yp[cy : cy + h - kh + 1, cx : cx + w - kw + 1]
    if limits is None and integer_stored:
        limits = (0.0, 1.0)
    # the arrays as they come: bands are made float64 one at a time
    if keep_clipped or limits is None:
        kept = np.ones(yp.shape, dtype=bool)
    else:
        kept = (limits[0] / y_scale < yp) & (yp < limits[1] / y_scale)
    return MixPair(xp, yp, kept, x_scale, y_scale)


def _band_rows(p: MixPair, kh: int) -> int:
    """Rows of samples per band: about :data:`BLOCK_VALUES` values of its column strips."""
    return max(1, BLOCK_VALUES // (p.x.shape[1] * p.x.shape[2] * kh))


def _bands(p: MixPair, kh: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """The pair's column strips a band of sample rows [i0, i1) at a time: E (rows·W, C_in·kh)
    float64 with E[(i − i0)·W + j] = X[i : i + kh, j, :] in (channel, row) order, so that the
    window of sample (i, j) is E[q], E[q + 1], … E[q + kw − 1] for q = (i − i0)·W + j."""
    h, w, c = p.x.shape
    ho = h - kh + 1
    rows = _band_rows(p, kh)
    for i0 in range(0, ho, rows):
        i1 = min(ho, i0 + rows)
        z = np.empty((i1 - i0, w, c, kh))
        for a in range(kh):
            z[..., a] = p.x[i0 + a : i1 + a]
        yield i0, i1, z.reshape(-1, c * kh)


PRODUCT_ROWS = 160
"""Samples per product of a band's skinny matrices: products this small run on one BLAS thread,
which suits these shapes (more threads would mostly wait on each other)."""


def _spans(count: int) -> Iterator[slice]:
    for s0 in range(0, count, PRODUCT_ROWS):
        yield slice(s0, min(count, s0 + PRODUCT_ROWS))


def _every_kw(e: np.ndarray, kw: int, r: int) -> np.ndarray:
    """The windows of samples r, r + kw, r + 2·kw … of a band as the rows of a matrix, without a
    copy: the window of sample q is E[q], … E[q + kw − 1], kw·C·kh consecutive values of E, and
    samples kw apart start kw·C·kh values apart. Values in (column, channel, row) order."""
    count = max(0, (len(e) - kw - r) // kw + 1)
    size = kw * e.shape[1]
    return np.lib.stride_tricks.as_strided(
        e[r:], shape=(count, size), strides=(size * e.itemsize, e.itemsize), writeable=False
    )


def _add_rows(sums: Sums, p: MixPair, kh: int, kw: int) -> None:
    """Add every sample of the pair, row by row as runs (:mod:`convtool.learn.runs`): the first
    block row from the column strips and their lags, each target masked to its kept samples."""
    h, w, c = p.x.shape
    ck = c * kh
    ho, wo = h - kh + 1, w - kw + 1
    m = p.y.shape[2]
    for i0, i1, e in _bands(p, kh):
        u = np.zeros((i1 - i0, w, ck + 1 + m))  # the samples' strips, 1 and targets; 0 past Wo
        u[:, :wo, :ck] = e.reshape(i1 - i0, w, ck)[:, :wo]
        u[:, :wo, ck] = 1.0
        u[:, :wo, ck + 1 :] = np.where(p.kept[i0:i1], p.y[i0:i1], 0.0)
        flat = u.reshape(-1, ck + 1 + m)
        head = np.zeros((ck + 1 + m, kw * ck))  # columns in (column, channel, row) order
        for r in range(kw):  # a sample's window lies in its row (0 past Wo: no others count)
            v = _every_kw(e, kw, r)
            ur = flat[r : r + kw * len(v) : kw]
            for span in _spans(len(v)):
                head += ur[span].T @ v[span]
        sums.head += head.reshape(-1, kw, c, kh).transpose(0, 2, 3, 1).reshape(len(head), -1)
        sums.tail += np.einsum("qi,qj->ij", flat[:, ck:], flat[:, ck:])
    if kw > 1:
        rows = np.arange(ho)
        first = windows(p.x, rows, np.zeros(ho, dtype=np.intp), kh, kw - 1)
        last = windows(p.x, rows, np.full(ho, wo), kh, kw - 1)
        sums.ends += last.T @ last
        sums.ends -= first.T @ first


def _pair_normals(p: MixPair, kh: int, kw: int) -> list[np.ndarray]:
    """The pair's augmented matrix for each output, Σ u uᵀ of u = (v, 1, y_o) over its kept
    samples, in the pixel policy's units: the matrix over every sample, less the windows of
    the output's samples left out, summed in the arrays' own units and scaled once."""
    c_in, c_out = p.x.shape[2], p.y.shape[2]
    n = c_in * kh * kw
    sums = Sums.zeros(c_in, kh, kw, c_out)
    _add_rows(sums, p, kh, kw)
    shared = sums.finish(c_in, kh, kw)
    scale = np.array([p.x_scale] * n + [1.0, p.y_scale])
    out = []
    for o in range(c_out):
        g = np.empty((n + 2, n + 2))
        g[: n + 1, : n + 1] = shared[: n + 1, : n + 1]
        if not p.kept[..., o].all():
            left = Sums.zeros(c_in, kh, kw, 0, g[: n + 1, : n + 1], -1.0)
            add_masked(left, p.x, p.y[..., :0], ~p.kept[..., o], kh, kw)
            left.finish(c_in, kh, kw)
        g[: n + 1, n + 1] = g[n + 1, : n + 1] = shared[: n + 1, n + 1 + o]
        g[n + 1, n + 1] = shared[n + 1 + o, n + 1 + o]
        out.append(g * np.outer(scale, scale))
    return out


def layer_normals(pairs: Sequence[MixPair], kh: int, kw: int, meter: Meter | None) -> list[Normal]:
    """Each output channel's normal equations: Σ v vᵀ of v = (windows, 1, y_o) over its kept
    samples, as a :class:`~convtool.learn.lstsq.Normal` (uncentred)."""
    total: list[np.ndarray] | None = None
    for done, p in enumerate(pairs, start=1):
        parts = _pair_normals(p, kh, kw)
        total = parts if total is None else [t + g for t, g in zip(total, parts, strict=True)]
        if meter is not None:
            meter(done / len(pairs))
    assert total is not None
    return [Normal(((g, 0.0, 0.0),), 0.0, 0.0, g) for g in total]


@dataclass(frozen=True)
class LayerFit:
    """Weights (C_out, C_in·kh·kw), biases, ranks, gd's losses and epochs."""

    weights: np.ndarray
    biases: np.ndarray
    ranks: list[int]
    history: list[float]
    lr: float | None
    epochs: int


def solve_layer(normals: list[Normal], n: int, bias: bool) -> LayerFit:
    """Least squares, output by output."""
    zs, ranks = zip(*(solve(normal, n, bias) for normal in normals), strict=True)
    weights = np.array([z[:n] for z in zs])
    biases = np.array([float(z[n]) if bias else 0.0 for z in zs])
    return LayerFit(weights, biases, list(ranks), [], None, 0)


def descend_layer(
    normals: list[Normal],
    n: int,
    bias: bool,
    lr: float | None,
    epochs: int,
    seed: int | None,
    meter: Meter | None,
) -> LayerFit:
    """The textbook's gradient descent on the summed loss of every output, from N(0, 0.01²)
    weights and zero biases, ``lr`` by default 1/L (L the largest eigenvalue of the Hessian);
    it stops early once the loss stops moving."""
    k = n + int(bias)
    a = np.array([nm.gram[:k, :k] for nm in normals])
    r = np.array([nm.gram[:k, n + 1] for nm in normals])
    yy = np.array([nm.gram[n + 1, n + 1] for nm in normals])
    if lr is None:
        top = max(float(np.linalg.eigvalsh(2.0 * ai)[-1]) for ai in a)
        lr = 1.0 / top if top > 0 else 1.0
    rng = np.random.default_rng(seed)
    z = np.zeros((len(normals), k))
    z[:, :n] = rng.normal(0.0, INIT_STD, size=(len(normals), n))
    history: list[float] = []
    for epoch in range(1, epochs + 1):
        az = np.einsum("okl,ol->ok", a, z)
        loss = float(np.sum(np.einsum("ok,ok->o", z, az - 2 * r) + yy))
        if not math.isfinite(loss):
            raise LearnError(
                OVERFLOW
                if epoch == 1
                else f"gradient descent diverged at epoch {epoch} (loss {loss:g}) with learning "
                f"rate {lr:g}; use a smaller --lr, or leave it out for the step that always "
                "descends"
            )
        history.append(max(loss, 0.0))
        if meter is not None:
            meter(epoch / epochs)
        z = z - lr * 2.0 * (az - r)
        if stalled(history):
            break
    biases = z[:, n] if bias else np.zeros(len(normals))
    return LayerFit(z[:, :n], biases, [], history, lr, len(history))


def _residuals(
    p: MixPair, weights: np.ndarray, biases: np.ndarray, kh: int, kw: int
) -> Iterator[np.ndarray]:
    """The pair's residuals Σ_(c, a, b) X ⋆ K + b − Y over its kept samples, a band at a time
    (from the column strips: the window of sample q is E[q … q + kw − 1])."""
    w = p.x.shape[1]
    wo = w - kw + 1
    c_out = weights.shape[0]
    # (column, channel, row) order, as _every_kw gives the windows
    taps = weights.reshape(c_out, -1, kh, kw).transpose(3, 1, 2, 0).reshape(-1, c_out)
    taps = taps * p.x_scale
    for i0, i1, e in _bands(p, kh):
        pred = np.zeros((len(e), c_out))
        for r in range(kw):
            v = _every_kw(e, kw, r)
            rows = pred[r : r + kw * len(v) : kw]
            for span in _spans(len(v)):
                rows[span] = v[span] @ taps
        pred3 = pred.reshape(i1 - i0, w, c_out)[:, :wo] + biases
        yield (pred3 - p.y_scale * p.y[i0:i1])[p.kept[i0:i1]]


def layer_figures(
    pairs: Sequence[MixPair],
    normals: list[Normal],
    weights: np.ndarray,
    biases: np.ndarray,
    kh: int,
    kw: int,
) -> dict[str, float | int | None]:
    """RMSE, largest error and R² over the kept samples of every output (R² with each
    output's variation about its own mean), and the sample counts."""
    n = weights.shape[1]
    used = sum(int(nm.gram[n, n]) for nm in normals)
    clipped = sum(int(p.kept.size - np.count_nonzero(p.kept)) for p in pairs)
    if used == 0:
        return {"used": 0, "clipped": clipped, "rmse": None, "max_error": None, "r2": None}
    sse = sst = largest = 0.0
    for nm in normals:
        count = float(nm.gram[n, n])
        if count:
            sst += float(nm.gram[n + 1, n + 1]) - float(nm.gram[n, n + 1]) ** 2 / count
    for p in pairs:  # the residuals themselves: a quadratic form would lose their last digits
        for res in _residuals(p, weights, biases, kh, kw):
            sse += float(np.square(res).sum())
            largest = max(largest, float(np.abs(res).max(initial=0.0)))
    return {
        "used": used,
        "clipped": clipped,
        "rmse": math.sqrt(sse / used),
        "max_error": largest,
        "r2": 1.0 - sse / sst if sst > 0 else None,
    }
