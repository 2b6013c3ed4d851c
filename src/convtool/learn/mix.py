"""Learning a full convolutional layer (``--channels mix``): out[o] = Σ_i X[i] ⋆ K[o, i] + b[o].

Each output channel has C_in·kh·kw weights (and a bias). Their normal equations share one Gram
matrix, Σ v vᵀ of v = (the C_in·kh·kw window values, 1) over the valid windows: it is summed
once, in blocks of windows (a BLAS product; memory O((C_in·kh·kw)²) whatever the image size),
and each output subtracts the windows of its own samples left out as clipped. Least squares
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
from convtool.learn.pairs import as_planes
from convtool.learn.work import Meter

BLOCK_VALUES = 1 << 21
"""float64 values (16 MiB) a block of windows holds at most."""


@dataclass(frozen=True)
class MixPair:
    """One pair for a layer: the input (H, W, C_in), the aligned target (Ho, Wo, C_out) (float32
    or float64), and which target samples are kept (Ho, Wo, C_out)."""

    x: np.ndarray
    y: np.ndarray
    kept: np.ndarray


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
    xp, _ = as_planes(x, input_name)
    yp, integer_stored = as_planes(y, target_name)
    kh, kw = ksize
    h, w, _ = xp.shape
    th, tw, _ = yp.shape
    if kh > h or kw > w:
        raise LearnError(
            f"the {kh}x{kw} kernel is larger than {input_name} ({h}x{w}); the kernel must fit "
            f"inside every input: choose a --size of at most {h}x{w}"
        )
    ho, wo = h - kh + 1, w - kw + 1
    if (th, tw) == (h, w):
        cy, cx = (kh // 2, kw // 2) if anchor is None else anchor
        yp = yp[cy : cy + ho, cx : cx + wo]
    elif (th, tw) != (ho, wo):
        raise LearnError(
            f"{target_name} is {th}x{tw} but {input_name} is {h}x{w}: with a {kh}x{kw} kernel "
            f"the target must be {h}x{w} (same size) or {ho}x{wo} (valid output)"
        )
    if limits is None and integer_stored:
        limits = (0.0, 1.0)
    # the planes as they come (float32 for 8/16-bit): blocks are made float64 one at a time
    if keep_clipped or limits is None:
        kept = np.ones(yp.shape, dtype=bool)
    else:
        kept = (limits[0] < yp) & (yp < limits[1])
    return MixPair(xp, yp, kept)


def _block_rows(p: MixPair, kh: int, kw: int) -> int:
    """Rows of windows per block: about :data:`BLOCK_VALUES` values."""
    wo = p.x.shape[1] - kw + 1
    return max(1, BLOCK_VALUES // (wo * (p.x.shape[2] * kh * kw + 1)))


def _blocks(p: MixPair, kh: int, kw: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The pair's windows as float64 (samples, C_in·kh·kw + 1) blocks (with the column of
    ones), their targets and kept masks (samples, C_out), made a block of rows at a time."""
    view = np.lib.stride_tricks.sliding_window_view(p.x, (kh, kw), axis=(0, 1))
    ho, wo = view.shape[:2]
    n = view[0, 0].size
    rows = _block_rows(p, kh, kw)
    for r0 in range(0, ho, rows):
        r1 = min(ho, r0 + rows)
        v = np.empty((r1 - r0, wo, n + 1))
        v[..., :n] = view[r0:r1].reshape(r1 - r0, wo, n)
        v[..., n] = 1.0
        y = p.y[r0:r1].reshape(-1, p.y.shape[2]).astype(np.float64)
        yield v.reshape(-1, n + 1), y, p.kept[r0:r1].reshape(-1, p.y.shape[2])


def layer_normals(pairs: Sequence[MixPair], kh: int, kw: int, meter: Meter | None) -> list[Normal]:
    """Each output channel's normal equations: Σ v vᵀ of v = (windows, 1, y_o) over its kept
    samples, as a :class:`~convtool.learn.lstsq.Normal` (uncentred)."""
    c_out = pairs[0].y.shape[2]
    n = pairs[0].x.shape[2] * kh * kw
    m = n + 2
    shared = np.zeros((n + 1, n + 1))
    cross = np.zeros((n + 1, c_out))
    left = np.zeros((c_out, n + 1, n + 1))
    sy = np.zeros(c_out)
    syy = np.zeros(c_out)
    total = sum(-(-(p.x.shape[0] - kh + 1) // _block_rows(p, kh, kw)) for p in pairs)
    blocks = (b for p in pairs for b in _blocks(p, kh, kw))
    for done, (v, y, kept) in enumerate(blocks, start=1):
        shared += v.T @ v
        ym = np.where(kept, y, 0.0)
        cross += v.T @ ym
        sy += ym.sum(axis=0)
        syy += np.square(ym).sum(axis=0)
        for o in range(c_out):
            if not kept[:, o].all():
                out = v[~kept[:, o]]
                left[o] += out.T @ out
        if meter is not None:
            meter(done / total)
    normals = []
    for o in range(c_out):
        g = np.empty((m, m))
        g[: n + 1, : n + 1] = shared - left[o]
        g[: n + 1, n + 1] = g[n + 1, : n + 1] = cross[:, o]
        g[n, n + 1] = g[n + 1, n] = sy[o]
        g[n + 1, n + 1] = syy[o]
        normals.append(Normal(((g, 0.0, 0.0),), 0.0, 0.0, g))
    return normals


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
    wb = np.vstack([weights.T, biases[np.newaxis]])  # (n + 1, C_out)
    for p in pairs:  # the residuals themselves: a quadratic form would lose their last digits
        for v, y, kept in _blocks(p, kh, kw):
            res = (v @ wb - y)[kept]
            sse += float(np.square(res).sum())
            largest = max(largest, float(np.abs(res).max(initial=0.0)))
    return {
        "used": used,
        "clipped": clipped,
        "rmse": math.sqrt(sse / used),
        "max_error": largest,
        "r2": 1.0 - sse / sst if sst > 0 else None,
    }
