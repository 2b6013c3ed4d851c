"""The least-squares fit of ``learn``: the normal equations summed in one parallel pass
(exactly, over the stored integers, when every pair is 8/16-bit), solved with a rank tolerance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convtool import compiled
from convtool.bundles import LearnPair
from convtool.learn.gram import augmented_gram, integer_exact
from convtool.learn.pairs import Pair, Raw, aligned, nchunks, pair_work
from convtool.learn.work import (
    SHOW_PROGRESS,
    Meter,
    direct_seconds,
    fft_seconds,
    shares,
    use_fft,
)

RANK_RTOL = 1e-10
"""Eigenvalues of the unit-diagonal normal matrix below ``RANK_RTOL × the largest`` count as
zero: those directions of the kernel are not determined by the data (minimum-norm solution)."""


CHOLESKY_FROM = 400
"""Well-conditioned systems of at least this many unknowns are solved by a Cholesky
factorisation, a fraction of the cost of the eigenvectors; smaller ones through the
eigendecomposition, cheap at that size, whose answers to exact data come out exact (the
textbook's [1, −1])."""


CENTRE_RATIO = 100.0
"""The normal equations are summed from centred data when an input's mean is more than this
many times its range (max − min) away from 0."""


BAND_VALUES = 1 << 18
"""Values per band (2 MiB in float64) of the centred copies the normal equations are summed from."""


@dataclass(frozen=True)
class Normal:
    """The normal equations of the pairs, summed from centred data.

    ``parts`` holds, for each pair, the (n + 2)² augmented matrix Σ v vᵀ of v = (x − c_p, 1,
    y − d_p) over its kept samples (x the n window values, y the target) and its centres c_p,
    d_p (the pair's means, or 0 and 0 when no input is far from 0; see :data:`CENTRE_RATIO`).
    Centred, the entries carry the variation of the data rather than n·N·c², beside which a
    small variation of large values would be lost to rounding.
    ``c`` and ``d`` are the centres averaged over the samples; ``gram`` is Σ v vᵀ of v = (x, 1,
    y), computed from the parts exactly by the change of coordinates (for the Hessian of
    gradient descent and the target's scale).
    """

    parts: tuple[tuple[np.ndarray, float, float], ...]
    c: float
    d: float
    gram: np.ndarray


def normal_equations(
    pairs: list[Pair], kh: int, kw: int, meter: Meter | None = None
) -> tuple[Normal, np.ndarray]:
    """The pairs' normal equations (see :class:`Normal`) and the counts (kept, left out).

    Each pair by the faster route (:func:`~convtool.learn.work.use_fft`): FFTs of the pair
    centred on its means (:func:`~convtool.learn.gram.augmented_gram`), or the jitted pass.
    When an input is far from 0 (:data:`CENTRE_RATIO`), the jitted pass sums each pair centred
    on its own means (c_p, d_p) band by band (float64 copies of at most :data:`BAND_VALUES`
    values); otherwise it reads the pairs' own arrays, whole (in bands when the fit is long
    enough to show progress).
    """
    m = kh * kw + 2
    counts = np.zeros(2, dtype=np.int64)
    parts = []
    means = [float(np.mean(p.src, dtype=np.float64)) for p in pairs]
    # centred only where it matters: a value far from 0 against its spread; otherwise the sums
    # are those of the raw data (exact answers such as the textbook's [1, −1] stay exact)
    centre = any(
        abs(c_p) > CENTRE_RATIO * float(np.ptp(p.src)) for c_p, p in zip(means, pairs, strict=True)
    )
    works = [pair_work(p, kh, kw) for p in pairs]
    meters = shares(meter, [min(direct_seconds(w, kh, kw), fft_seconds(w, kh, kw)) for w in works])
    for p, c_p, work, tick in zip(pairs, means, works, meters, strict=True):
        if use_fft(work, kh, kw):
            x, y = aligned(p.src, p.target, p, kh, kw)
            kept = (p.lo < y) & (y < p.hi)
            x = _centred(x, c_p)
            part = augmented_gram(x, _centred(y, p.shift), kept, kh, kw, tick=tick)
            kept_here = int(np.count_nonzero(kept))
            counts += (kept_here, kept.size - kept_here)
            parts.append((part, c_p, p.shift, kept_here))
            continue
        d_p = p.shift
        if not centre:
            c_p = d_p = 0.0
        kept_before = int(counts[0])
        banded = direct_seconds(work, kh, kw) > SHOW_PROGRESS
        part = _direct_part(p, kh, kw, c_p, d_p, centre, counts, banded, tick)
        parts.append((part, c_p, d_p, int(counts[0]) - kept_before))
    return combine(parts, m), counts


def _centred(a: np.ndarray, centre: float) -> np.ndarray:
    """A float64 copy of ``a`` less ``centre``, made in place (one copy, not two); ``a`` itself
    when ``centre`` is 0 (the FFT route takes its float64 copies a plane or a block at a time)."""
    if not centre:
        return a
    out = a.astype(np.float64)
    out -= centre
    return out


def _direct_part(
    p: Pair,
    kh: int,
    kw: int,
    c_p: float,
    d_p: float,
    centre: bool,
    counts: np.ndarray,
    banded: bool,
    tick: Meter | None,
) -> np.ndarray:
    """One pair's augmented matrix from the jitted pass, band by band (see there); ``banded``:
    in bands of a tenth of the rows (a long pass, to show progress; the same bytes whether
    progress is shown or not)."""
    n = kh * kw
    part = np.zeros((n + 2, n + 2))
    rows = p.src.shape[0] - kh + 1
    band = rows
    if centre:
        band = max(1, BAND_VALUES // p.src.shape[1])
    elif banded:
        band = max(1, -(-rows // 10))
    for r0 in range(0, rows, band):
        r1 = min(rows, r0 + band)
        src = p.src[r0 : r1 + kh - 1]
        target = p.target[r0 + p.oy : r1 + p.oy]
        if centre:  # float64 copies of the band (the data's own rows otherwise)
            src = src.astype(np.float64)
            src -= c_p
            target = target.astype(np.float64)
            target -= d_p
        chunks = nchunks(r1 - r0, n)
        compiled.call(
            "learn_normal_equations",
            (LearnPair(src, p.channels, target, 0, p.ox, p.lo - d_p, p.hi - d_p), kh, kw,
             chunks, part, counts),
        )  # fmt: skip
        if tick is not None:
            tick(r1 / rows)
    return part


ROW_BLOCK = 512
"""Rows a time of the rank-few updates of large matrices (their temporaries stay small)."""


def congruence(g: np.ndarray, k: int, rows: list[int], v: np.ndarray) -> np.ndarray:
    """Lᵀ g L for L = (the first k columns of the identity) + Σ_j e_(rows[j]) v[:, j]ᵀ, in
    O(m·k) rather than the O(m²·k) of the products (``v`` is k × len(rows)): g[:k, :k] +
    u vᵀ + v uᵀ with u = g[:k, rows] + ½ v g[rows, rows], a block of rows at a time. A zero ``v``
    gives g[:k, :k] itself (no copy)."""
    if not v.any():
        return g[:k, :k]
    u = g[:k, rows] + 0.5 * (v @ g[np.ix_(rows, rows)])
    out = g[:k, :k].copy()
    for i0 in range(0, k, ROW_BLOCK):
        i1 = min(k, i0 + ROW_BLOCK)
        out[i0:i1] += u[i0:i1] @ v.T + v[i0:i1] @ u.T
    return out


def combine(parts: list[tuple[np.ndarray, float, float, int]], m: int) -> Normal:
    """The :class:`Normal` of the pairs' parts (augmented matrix, c_p, d_p, samples kept)."""
    total = sum(k for *_, k in parts)
    c = sum(c_p * k for _, c_p, _, k in parts) / total if total else 0.0
    d = sum(d_p * k for _, _, d_p, k in parts) / total if total else 0.0
    gram: np.ndarray | None = None
    for part, c_p, d_p, _ in parts:
        # Pᵀ part P for P, the identity but for row m − 2 (c_p … c_p, 1, d_p), which adds c_p to
        # the window values and d_p to the target of v·P: O(m²)
        row = np.zeros(m)  # P's row less the identity's
        row[: m - 2] = c_p
        row[m - 1] = d_p
        shifted = congruence(part, m, [m - 2], row[:, np.newaxis])
        if gram is None:
            gram = shifted  # one uncentred pair: its own matrix, not a copy
        else:
            if gram is parts[0][0]:
                gram = gram.copy()
            gram += shifted
    if gram is None:
        gram = np.zeros((m, m))
    return Normal(tuple((g, c_p, d_p) for g, c_p, d_p, _ in parts), c, d, gram)


INT_SUM = 1 << 62
"""Exact sums below this are kept as int64 (a fraction of the memory of Python ints)."""

EXACT_SUM = 1 << 53
"""float64 holds every integer below this exactly: no sum of one pass may reach it."""


@dataclass(frozen=True)
class RawPart:
    """One pair's normal equations in stored units, exact: Σ v vᵀ of v = (x − c, 1, y − d)
    over its kept samples, as Python ints, with the integer centres c, d (0 when uncentred)."""

    gram: np.ndarray  # (n + 2, n + 2), int64 (Python ints, dtype object, past INT_SUM)
    c: int
    d: int
    top_x: int
    top_y: int
    kept: int
    left_out: int


def exact_normal_equations(
    pairs: list[Pair], kh: int, kw: int, meter: Meter | None = None
) -> tuple[Normal, list[RawPart]]:
    """The normal equations summed over the stored integers, exact, then in [0, 1] units.

    Every product and partial sum of integers is an integer, the same in any order while it
    stays below 2**53: so the jitted pass and its numpy twin (``convtool.twins.learn``, run while
    numba's cache is cold) give the same bytes. One pass sums fewer than 2**53 / top²
    samples; the passes are added as Python ints. Centring (:data:`CENTRE_RATIO`) is by the
    rounded means, which keeps the centred samples integers. A pair whose FFT route is faster
    takes it when its FFT sums, rounded, are exact (:func:`~convtool.learn.gram.integer_exact`):
    the same integers, hence the same bytes.
    """
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
    exact: list[RawPart] = []
    parts = []
    works = [pair_work(p, kh, kw) for p in pairs]
    meters = shares(meter, [min(direct_seconds(w, kh, kw), fft_seconds(w, kh, kw)) for w in works])
    for i, (p, r, mean) in enumerate(zip(pairs, raws, means, strict=True)):
        assert r is not None
        c_p = round(mean) if centre else 0
        d_p = round(float(np.mean(r.target, dtype=np.float64))) if centre else 0
        counts = np.zeros(2, dtype=np.int64)
        total = None
        if use_fft(works[i], kh, kw):
            total = _exact_fft(p, r, kh, kw, c_p, d_p, counts, meters[i])
        if total is None:
            total = _exact_direct(p, r, kh, kw, c_p, d_p, centre, counts, meters[i])
        kept = int(counts[0])
        exact.append(RawPart(total, c_p, d_p, r.top_x, r.top_y, kept, int(counts[1])))
        scale = np.array([1.0 / r.top_x] * n + [1.0, 1.0 / r.top_y])
        unit = total.astype(np.float64)
        unit *= scale[:, np.newaxis]
        unit *= scale[np.newaxis, :]
        parts.append((unit, c_p / r.top_x, d_p / r.top_y, kept))
    return combine(parts, m), exact


def _exact_fft(
    p: Pair,
    r: Raw,
    kh: int,
    kw: int,
    c_p: int,
    d_p: int,
    counts: np.ndarray,
    tick: Meter | None,
) -> np.ndarray | None:
    """One pair's exact augmented matrix (Python ints) from FFTs, or None when their rounded
    sums could be off (:func:`~convtool.learn.gram.integer_exact`)."""
    x, y = aligned(r.src, r.target, p, kh, kw)
    kept = (r.lo < y) & (y < r.hi)
    x = _centred(x, c_p)
    y = _centred(y, d_p)
    if not (integer_exact(x, x) and integer_exact(x, y) and integer_exact(y, y)):
        return None
    part = augmented_gram(x, y, kept, kh, kw, integer=True, tick=tick)
    kept_here = int(np.count_nonzero(kept))
    counts += (kept_here, kept.size - kept_here)
    return part.astype(np.int64)


def _exact_direct(
    p: Pair,
    r: Raw,
    kh: int,
    kw: int,
    c_p: int,
    d_p: int,
    centre: bool,
    counts: np.ndarray,
    tick: Meter | None,
) -> np.ndarray:
    """One pair's exact augmented matrix (Python ints) from the jitted pass (or its twin), in
    bands whose sums stay below 2**53."""
    from convtool.twins import learn as learn_twins

    n = kh * kw
    m = n + 2
    total = np.zeros((m, m), dtype=object)
    rows = r.src.shape[0] - kh + 1
    length = (r.src.shape[1] // p.channels - kw + 1) * p.channels
    # rows of products per pass, with the kh − 1 rows below the last (the twin sums them)
    band = max(1, EXACT_SUM // (max(r.top_x, r.top_y) ** 2 * length) - (kh - 1))
    if centre:
        band = min(band, max(1, BAND_VALUES // r.src.shape[1]))
    if tick is not None:  # bands of a tenth at most, to show progress (integers: same sums)
        band = min(band, max(1, -(-rows // 10)))
    for r0 in range(0, rows, band):
        r1 = min(rows, r0 + band)
        src, target = r.src[r0 : r1 + kh - 1], r.target[r0 + p.oy : r1 + p.oy]
        if centre:  # float64 copies of the band, still integers
            src = src.astype(np.float64) - c_p
            target = target.astype(np.float64) - d_p
        part = np.zeros((m, m))
        bundle = LearnPair(src, p.channels, target, 0, p.ox, r.lo - d_p, r.hi - d_p)
        args = (bundle, kh, kw, nchunks(r1 - r0, n), part, counts)
        compiled.run("learn_normal_equations", args, learn_twins.learn_normal_equations, now=False)
        total += part.astype(np.int64).astype(object)
        if tick is not None:
            tick(r1 / rows)
    if max(abs(int(total.max())), abs(int(total.min()))) < INT_SUM:
        return total.astype(np.int64)
    return total


def system(gram: np.ndarray, n: int, bias: bool) -> tuple[np.ndarray, np.ndarray]:
    """The normal equations A z = c for z = weights (and the bias) from the augmented matrix."""
    idx = list(range(n + 1)) if bias else list(range(n))
    return gram[np.ix_(idx, idx)], gram[idx, n + 1]


def _scaled(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """D⁻¹AD⁻¹ with D = √diag(A) (1 where 0), made in ``a`` itself, and d = diag(D)."""
    d = np.sqrt(np.diag(a).copy())
    d[d == 0] = 1.0
    for i in range(0, len(a), ROW_BLOCK):
        a[i : i + ROW_BLOCK] /= np.outer(d[i : i + ROW_BLOCK], d)
    return a, d


def _kept(lam: np.ndarray) -> np.ndarray:
    top = float(lam.max()) if lam.size else 0.0
    return lam > RANK_RTOL * top if top > 0 else np.zeros(lam.shape, dtype=bool)


BLOCK = 256
"""Rows per block of the triangular solves (numpy has none: blocks of dense solves)."""


class Triangle:
    """A lower-triangular Cholesky factor L ready for solves: the inverses of its diagonal
    blocks (:data:`BLOCK` rows; numpy has no triangular solve), so that each solve is O(k²)."""

    def __init__(self, chol: np.ndarray) -> None:
        self.chol = chol
        self.spans = [(i, min(len(chol), i + BLOCK)) for i in range(0, len(chol), BLOCK)]
        self.inverses = [np.linalg.inv(chol[i0:i1, i0:i1]) for i0, i1 in self.spans]

    def lower(self, b: np.ndarray) -> np.ndarray:
        """x with L x = b."""
        x = np.empty_like(b)
        for (i0, i1), inv in zip(self.spans, self.inverses, strict=True):
            x[i0:i1] = inv @ (b[i0:i1] - self.chol[i0:i1, :i0] @ x[:i0])
        return x

    def upper(self, b: np.ndarray) -> np.ndarray:
        """x with Lᵀ x = b."""
        x = np.empty_like(b)
        for (i0, i1), inv in zip(self.spans[::-1], self.inverses[::-1], strict=True):
            x[i0:i1] = inv.T @ (b[i0:i1] - self.chol[i1:, i0:i1].T @ x[i1:])
        return x


def cholesky_in_place(a: np.ndarray) -> np.ndarray:
    """The lower Cholesky factor L of ``a`` (A = L Lᵀ), made in ``a`` itself by blocks of
    :data:`BLOCK` rows: no copies of the matrix, and a few large products rather than LAPACK's
    many small steps, which BLAS threads on a busy machine mostly spend waiting for each other.
    Raises LinAlgError when ``a`` is not positive definite in floating point."""
    n = len(a)
    for i0 in range(0, n, BLOCK):
        i1 = min(n, i0 + BLOCK)
        a[i0:i1, i0:i1] = np.linalg.cholesky(a[i0:i1, i0:i1])
        a[i0:i1, i1:] = 0.0
        if i1 == n:
            break
        a[i1:, i0:i1] = a[i1:, i0:i1] @ np.linalg.inv(a[i0:i1, i0:i1]).T
        below = a[i1:, i0:i1]
        for j0 in range(i1, n, BLOCK):  # the lower part of the rest, a block of rows at a time
            j1 = min(n, j0 + BLOCK)
            a[j0:j1, i1:j1] -= below[j0 - i1 : j1 - i1] @ below[: j1 - i1].T
    return a


def _row_bound(a: np.ndarray) -> float:
    """The largest absolute row sum of ``a``: a bound on its largest eigenvalue."""
    return max(
        float(np.abs(a[i : i + ROW_BLOCK]).sum(axis=1).max()) for i in range(0, len(a), ROW_BLOCK)
    )


CERTAIN = 100.0
"""The Cholesky route needs the smallest eigenvalue, as estimated, above CERTAIN × RANK_RTOL ×
a bound on the largest: a margin for the estimate."""

ITERATIONS = 12
"""Steps of inverse iteration that estimate the smallest eigenvalue."""


def _well_conditioned(top: float, chol: Triangle) -> bool:
    """Whether no eigenvalue of A = L Lᵀ is near the rank tolerance: the smallest by inverse
    iteration through the Cholesky factor (O(k²) a step, from a fixed start; its Rayleigh
    quotient xᵀAx = |Lᵀx|²), the largest bounded by ``top`` (A's largest absolute row sum)."""
    x = np.random.default_rng(0).standard_normal(len(chol.chol))
    for _ in range(ITERATIONS):
        y = chol.upper(chol.lower(x))
        x = y / np.linalg.norm(y)
    v = chol.chol.T @ x
    smallest = float(v @ v)
    return smallest > CERTAIN * RANK_RTOL * top


def _reparametrised(
    normal: Normal, n: int, bias: bool
) -> tuple[np.ndarray, np.ndarray, Map, np.ndarray]:
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
    # S = I + e_(n−1) sᵀ_0 (+ e_n sᵀ_1 with a bias), T its first n rows and columns
    tau = np.zeros(k)
    if any(c_p or d_p for _, c_p, d_p in normal.parts):
        tau[: n - 1] = -1.0  # K_{n−1} = u − Σ_{p<n−1} K_p
    srows = [n - 1]
    svecs = [tau]
    z0 = np.zeros(k)
    if bias:
        b_row = np.zeros(k)
        b_row[n - 1] = -normal.c  # b = β − c·u + d
        srows.append(n)
        svecs.append(b_row)
        z0[n] = normal.d
    a: np.ndarray | None = None
    r = np.zeros(k)
    for g, c_p, d_p in normal.parts:
        # L = (the first k columns of I) + e_(n−1) τᵀ + e_n ℓᵀ: T's last row and the row
        # of the constant 1; a0 = (0, …, 0, −(d_p − d) or −d_p, −1)
        v = np.zeros((k, 2))
        v[:n, 0] = tau[:n]
        v[n - 1, 1] = c_p - normal.c if bias else c_p
        a0 = np.zeros(m)
        a0[n + 1] = -1.0
        a0[n] = -(d_p - normal.d) if bias else -d_p
        part = congruence(g, k, [n - 1, n], v)
        if a is None:
            a = part.copy() if np.shares_memory(part, g) else part
        else:
            a += part
        y = g @ a0
        r -= y[:k] + v @ y[[n - 1, n]]
    assert a is not None
    return a, r, Map(srows, np.array(svecs)), z0


@dataclass(frozen=True)
class Map:
    """S = I + Σ_j e_(rows[j]) vecs[j]ᵀ: the identity but for a row or two."""

    rows: list[int]
    vecs: np.ndarray

    def __matmul__(self, x: np.ndarray) -> np.ndarray:
        out = np.array(x, dtype=np.float64)
        for row, vec in zip(self.rows, self.vecs, strict=True):
            out[row] += vec @ x
        return out


def normal_rank(normal: Normal, n: int, bias: bool) -> int:
    a, *_ = _reparametrised(normal, n, bias)
    scaled, _ = _scaled(a)
    if len(scaled) >= CHOLESKY_FROM:
        top = _row_bound(scaled)
        try:
            if _well_conditioned(top, Triangle(cholesky_in_place(scaled))):
                return len(scaled)
        except np.linalg.LinAlgError:
            pass
        scaled, _ = _scaled(_reparametrised(normal, n, bias)[0])  # factorised in place
    return int(_kept(np.linalg.eigvalsh(scaled)).sum())


def solve(normal: Normal, n: int, bias: bool) -> tuple[np.ndarray, int]:
    """The minimum-norm least-squares solution of the normal equations, and their rank.

    The system, in the coordinates of :func:`_reparametrised`, is scaled to a unit diagonal (so
    the tolerance does not depend on the units of each unknown). A large system
    (:data:`CHOLESKY_FROM`) whose eigenvalues are all well above ``RANK_RTOL`` × the largest
    (:func:`_well_conditioned`) is solved by a Cholesky factorisation;
    otherwise through its eigendecomposition, dropping those eigenvalues: the solution set is
    then z + null, and its element of least norm (in the original units: weights and bias) is z
    projected off the null space.
    """
    a, r, smat, z0 = _reparametrised(normal, n, bias)
    scaled, d = _scaled(a)
    if len(scaled) >= CHOLESKY_FROM:
        top = _row_bound(scaled)
        try:
            chol = Triangle(cholesky_in_place(scaled))
        except np.linalg.LinAlgError:  # not positive definite in floating point
            pass
        else:
            if _well_conditioned(top, chol):
                theta = chol.upper(chol.lower(r / d)) / d
                return smat @ theta + z0, len(scaled)
        a, r, smat, z0 = _reparametrised(normal, n, bias)  # factorised in place: again
        scaled, d = _scaled(a)
    lam, v = np.linalg.eigh(scaled)
    keep = _kept(lam)
    vk = v[:, keep]
    theta = (vk @ ((vk.T @ (r / d)) / lam[keep])) / d
    z = smat @ theta + z0
    if not keep.all():
        null = smat @ (v[:, ~keep] / d[:, np.newaxis])
        q, _ = np.linalg.qr(null)
        z = z - q @ (q.T @ z)
    return z, int(keep.sum())


def rank_warning(
    rank: int,
    unknowns: int,
    used: int,
    pairs: list[Pair],
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


def _flat(pair: Pair) -> bool:
    planes = pair.src.reshape(pair.src.shape[0], -1, pair.channels)
    return bool((planes.min(axis=(0, 1)) == planes.max(axis=(0, 1))).all())
