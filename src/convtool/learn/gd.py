"""Gradient descent, the textbook's loop, on the summed squared loss of ``learn``."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from convtool.errors import LearnError
from convtool.learn.lstsq import Normal, solve, system
from convtool.learn.pairs import Pair
from convtool.learn.report import fit_figures, residuals
from convtool.learn.work import Meter

INIT_STD = 0.01
"""Gradient descent starts from weights drawn from N(0, INIT_STD²) and a bias of 0."""


Progress = Callable[[int, float], None]


GD_CONVERGED = 1.01
"""Gradient descent counts as converged when its RMSE is within this factor of the least-squares
fit's, or below GD_FLOOR × the RMS of the target (the comparison is made when the normal matrix
is at hand, i.e. with the default learning rate)."""


GD_FLOOR = 1e-4


OVERFLOW = (
    "the sums of squares and products of these data overflow float64 (values whose squares "
    "summed exceed about 1e308): the fit cannot be computed; scale input and target down (e.g. "
    "divide both by 1e150) and the kernel stays the same (the bias scales with the target)"
)


STALL_EPOCHS = 10
STALL_RTOL = 1e-12
"""Gradient descent stops early once the loss has moved by no more than STALL_RTOL of itself
over the last STALL_EPOCHS epochs (or reached 0): in float64 it has stopped falling, and more
epochs would only repeat it."""


def stalled(history: list[float]) -> bool:
    """Whether the losses so far have stopped falling (:data:`STALL_RTOL`)."""
    if history and history[-1] == 0.0:
        return True
    if len(history) <= STALL_EPOCHS:
        return False
    before = history[-1 - STALL_EPOCHS]
    return abs(before - history[-1]) <= STALL_RTOL * before


def convergence_warning(
    pairs: list[Pair], normal: Normal, kh: int, kw: int, bias: bool, rmse: float, epochs: int
) -> list[str]:
    """A warning when gradient descent ended well above the least-squares minimum."""
    n = kh * kw
    gram = normal.gram
    z, _ = solve(normal, n, bias)
    best = fit_figures(pairs, z[:n].reshape(kh, kw), float(z[n]) if bias else 0.0)["rmse"]
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


def default_lr(gram: np.ndarray, n: int, bias: bool) -> float:
    """1/L, L the largest eigenvalue of the loss's Hessian 2·A: the step that always descends."""
    a, _ = system(gram, n, bias)
    top = float(np.linalg.eigvalsh(2.0 * a)[-1])
    return 1.0 / top if top > 0 else 1.0


def descend(
    pairs: list[Pair],
    kh: int,
    kw: int,
    bias: bool,
    lr: float,
    epochs: int,
    seed: int | None,
    progress: Progress | None,
    history: list[float],
    meter: Meter | None = None,
) -> tuple[np.ndarray, float]:
    """The textbook's loop: loss = Σ (Ŷ − Y)², then K ← K − lr · ∇K (and b ← b − lr · ∂b),
    for ``epochs`` epochs or until the loss stops falling (:func:`stalled`); ``history`` gets
    the loss at the start of each epoch run."""
    n = kh * kw
    rng = np.random.default_rng(seed)
    weights = rng.normal(0.0, INIT_STD, size=(kh, kw))
    b = 0.0
    for epoch in range(1, epochs + 1):
        out = residuals(pairs, weights, b, gradient=True).sum(axis=0)
        loss = float(out[n + 1])
        if epoch == 1 and not math.isfinite(loss):  # from a small start: the data overflow
            raise LearnError(OVERFLOW)
        if not math.isfinite(loss) or not np.isfinite(out[: n + 1]).all():
            raise LearnError(
                f"gradient descent diverged at epoch {epoch} (loss {loss:g}) with learning rate "
                f"{lr:g}; use a smaller --lr, or leave it out for the step that always descends"
            )
        history.append(loss)
        if progress is not None:
            progress(epoch, loss)
        if meter is not None:
            meter(epoch / epochs)
        if stalled(history):
            break
        weights = weights - lr * 2.0 * out[:n].reshape(kh, kw)
        if bias:
            b -= lr * 2.0 * float(out[n])
    if not (np.isfinite(weights).all() and math.isfinite(b)):
        raise LearnError(
            f"gradient descent diverged in its last step with learning rate {lr:g}; use a "
            "smaller --lr, or leave it out for the step that always descends"
        )
    return weights, b
