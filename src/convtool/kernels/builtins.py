"""The built-in kernels: fixed grids written as data, the factories of the parametrised
families, and the registry from name to factory that ``-k NAME`` and ``convtool kernels`` read."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from convtool.errors import KernelError
from convtool.kernels.value import MAX_KERNEL_SIDE

IDENTITY = np.array([[1.0]])
EDGE_X = np.array([[1.0, -1.0]])
SOBEL_X = np.array(
    [[-1.0, 0.0, 1.0],
     [-2.0, 0.0, 2.0],
     [-1.0, 0.0, 1.0]]
)  # fmt: skip
SCHARR_X = np.array(
    [[-3.0, 0.0, 3.0],
     [-10.0, 0.0, 10.0],
     [-3.0, 0.0, 3.0]]
)  # fmt: skip
PREWITT_X = np.array(
    [[-1.0, 0.0, 1.0],
     [-1.0, 0.0, 1.0],
     [-1.0, 0.0, 1.0]]
)  # fmt: skip
ROBERTS_X = np.array(
    [[1.0, 0.0],
     [0.0, -1.0]]
)  # fmt: skip
ROBERTS_Y = np.array(
    [[0.0, 1.0],
     [-1.0, 0.0]]
)  # fmt: skip
LAPLACIAN = np.array(
    [[0.0, 1.0, 0.0],
     [1.0, -4.0, 1.0],
     [0.0, 1.0, 0.0]]
)  # fmt: skip
LAPLACIAN8 = np.array(
    [[1.0, 1.0, 1.0],
     [1.0, -8.0, 1.0],
     [1.0, 1.0, 1.0]]
)  # fmt: skip
SHARPEN = np.array(
    [[0.0, -1.0, 0.0],
     [-1.0, 5.0, -1.0],
     [0.0, -1.0, 0.0]]
)  # fmt: skip
EMBOSS = np.array(
    [[-2.0, -1.0, 0.0],
     [-1.0, 1.0, 1.0],
     [0.0, 1.0, 2.0]]
)  # fmt: skip


def _positive_int(value: float, what: str) -> int:
    if value != int(value) or value < 1:
        raise KernelError(f"{what} must be a whole number ≥ 1; got {value:g}")
    return int(value)


GAUSSIAN_TRUNCATE = 4.0
"""The default ``truncate`` of the Gaussian kernels, scipy.ndimage's: the kernel reaches
``int(truncate·σ + 0.5)`` samples either side of the centre, as ``gaussian_filter``'s does."""


def _sigma_size(
    name: str, sigma: float, size: float | None, truncate: float | None
) -> tuple[float, int]:
    """σ checked, and the side: ``size``, or 2·int(truncate·σ + 0.5) + 1 (scipy.ndimage's)."""
    if not sigma > 0:
        raise KernelError(f"{name}: sigma must be > 0; got {sigma:g}")
    if size is not None and truncate is not None:
        raise KernelError(
            f"{name}: give size=N or truncate=T, not both (truncate sets the size: "
            "2·int(T·σ + 0.5) + 1)"
        )
    if size is not None:
        n = _positive_int(size, f"{name}: size")
    else:
        n = _truncated_size(name, sigma, GAUSSIAN_TRUNCATE if truncate is None else truncate)
    if n > MAX_KERNEL_SIDE:
        raise KernelError(
            f"{name}: size {n} is larger than the limit {MAX_KERNEL_SIDE}; give a smaller size=N"
        )
    return sigma, n


def _truncated_size(name: str, sigma: float, truncate: float) -> int:
    if not truncate >= 0:
        raise KernelError(f"{name}: truncate must be ≥ 0; got {truncate:g}")
    # the side 2r + 1 is at most MAX_KERNEL_SIDE while r = int(T·σ + 0.5) ≤ (MAX − 1) / 2; the
    # comparison is made before int(), which an infinite T·σ (sigma=1e308) would overflow
    most = (MAX_KERNEL_SIDE - 1) // 2
    if not truncate * sigma + 0.5 < most + 1:
        raise KernelError(
            f"{name}: sigma {sigma:g} needs a kernel larger than the limit {MAX_KERNEL_SIDE} "
            f"(its side is 2·int({truncate:g}·σ + 0.5) + 1); choose a sigma below "
            f"{(most + 0.5) / truncate:g}, a smaller truncate=T, or give size=N"
        )
    return 2 * int(truncate * sigma + 0.5) + 1


def _centred_grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample coordinates ``i − (n−1)/2``, symmetric about the centre also for even ``n``."""
    c = np.arange(n, dtype=np.float64) - (n - 1) / 2
    return np.meshgrid(c, c, indexing="ij")


def box(size: float = 3) -> np.ndarray:
    """N×N mean filter, every entry 1/N².

    >>> box(2)
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """
    n = _positive_int(size, "box: size")
    if n > MAX_KERNEL_SIDE:
        raise KernelError(f"box: size {n} is larger than the limit {MAX_KERNEL_SIDE}")
    return np.full((n, n), 1.0 / (n * n))


def gaussian(
    sigma: float = 1.0, size: float | None = None, truncate: float | None = None
) -> np.ndarray:
    """exp(−(x²+y²)/2σ²) sampled at ``i − (N−1)/2``, normalised to sum 1.

    N = 2·int(truncate·σ + 0.5) + 1 with truncate 4 by default: scipy.ndimage.gaussian_filter's
    weights (its kernel per axis, outer-multiplied), unless ``size`` is given.

    >>> gaussian(1, size=3).round(4)
    array([[0.0751, 0.1238, 0.0751],
           [0.1238, 0.2042, 0.1238],
           [0.0751, 0.1238, 0.0751]])
    >>> gaussian(0.5).shape, gaussian(2).shape, gaussian(2, truncate=3).shape
    ((5, 5), (17, 17), (13, 13))
    """
    sigma, n = _sigma_size("gaussian", sigma, size, truncate)
    y, x = _centred_grid(n)
    g = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    return g / g.sum()


def log(sigma: float = 1.0, size: float | None = None, truncate: float | None = None) -> np.ndarray:
    """Laplacian of Gaussian ∇²G sampled like ``gaussian`` (negative centre), minus its mean.

    ∇²G(x, y) = (x² + y² − 2σ²) / (2πσ⁶) · exp(−(x²+y²)/2σ²); subtracting the mean makes the
    kernel sum to 0 within rounding, so flat regions give 0. The size is ``gaussian``'s.
    """
    sigma, n = _sigma_size("log", sigma, size, truncate)
    y, x = _centred_grid(n)
    r2 = x * x + y * y
    s2 = sigma * sigma
    k = (r2 - 2 * s2) / (2 * math.pi * s2**3) * np.exp(-r2 / (2 * s2))
    return k - k.mean()


def motion(length: float = 9, angle: float = 0.0) -> np.ndarray:
    """Motion blur: ones on the cells that a segment of ``length`` through the centre crosses.

    The kernel is M×M with M = ``length`` rounded up to odd; ``angle`` is in degrees, 0 horizontal,
    90 vertical, counter-clockwise as seen on screen (rows grow downwards); normalised to sum 1.

    >>> motion(3, 90) * 3
    array([[0., 1., 0.],
           [0., 1., 0.],
           [0., 1., 0.]])
    """
    if not length >= 1:
        raise KernelError(f"motion: length must be ≥ 1; got {length:g}")
    m = math.ceil(length)
    m += 1 - m % 2
    if m > MAX_KERNEL_SIDE:
        raise KernelError(f"motion: length {length:g} is larger than the limit {MAX_KERNEL_SIDE}")
    t = math.radians(angle)
    dx, dy = math.cos(t) * length / 2, -math.sin(t) * length / 2
    c = (m - 1) / 2
    k = np.zeros((m, m))
    eps = 1e-9
    for r in range(m):
        for col in range(m):
            if _segment_crosses_cell(-dx, -dy, dx, dy, col - c, r - c, 0.5 - eps):
                k[r, col] = 1.0
    return k / k.sum()


def _segment_crosses_cell(
    x0: float, y0: float, x1: float, y1: float, cx: float, cy: float, half: float
) -> bool:
    """Liang–Barsky: does segment (x0, y0)–(x1, y1) meet the square of ``half`` about (cx, cy)?"""
    lo, hi = 0.0, 1.0
    for p, q in (
        (-(x1 - x0), x0 - (cx - half)),
        (x1 - x0, (cx + half) - x0),
        (-(y1 - y0), y0 - (cy - half)),
        (y1 - y0, (cy + half) - y0),
    ):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            lo = max(lo, t)
        else:
            hi = min(hi, t)
        if lo > hi:
            return False
    return True


def diff(order: float = 1, axis: str = "x") -> np.ndarray:
    """Finite difference of ``order`` D: entries (−1)^k·C(D, k), k = 0..D; axis y gives a column.

    >>> diff(2)
    array([[ 1., -2.,  1.]])
    """
    d = _positive_int(order, "diff: order")
    if d + 1 > MAX_KERNEL_SIDE:
        raise KernelError(f"diff: order {d} gives a kernel larger than {MAX_KERNEL_SIDE}")
    row = np.array([[(-1.0) ** k * math.comb(d, k) for k in range(d + 1)]])
    if axis == "x":
        return row
    if axis == "y":
        return row.T.copy()
    raise KernelError(f"diff: axis must be 'x' or 'y'; got {axis!r}")


def directional(angle: float = 0.0) -> np.ndarray:
    """cos(A)·sobel-x + sin(A)·sobel-y, A in degrees from +x towards +y (rows grow downwards).

    It responds to edges orthogonal to the direction A: ``directional:0`` is ``sobel-x``.
    """
    t = math.radians(angle)
    return math.cos(t) * SOBEL_X + math.sin(t) * SOBEL_X.T


def unsharp(
    sigma: float = 1.0,
    amount: float = 1.0,
    size: float | None = None,
    truncate: float | None = None,
) -> np.ndarray:
    """Unsharp mask: identity + amount · (identity − gaussian(sigma, size, truncate)); sum 1."""
    g = gaussian(sigma, size, truncate)
    k = -amount * g
    c = g.shape[0] // 2
    k[c, c] += 1.0 + amount
    return k


@dataclass(frozen=True)
class Builtin:
    """A registry entry: a factory, the order of its positional arguments, and a description."""

    factory: Callable[..., np.ndarray]
    params: tuple[str, ...]
    summary: str
    string_params: tuple[str, ...] = ()


def _fixed(grid: np.ndarray) -> Callable[[], np.ndarray]:
    return lambda: grid.copy()


BUILTINS: dict[str, Builtin] = {
    "identity": Builtin(_fixed(IDENTITY), (), "[[1]]: the image unchanged"),
    "edge": Builtin(_fixed(EDGE_X), (), "[[1, -1]]: the textbook's vertical-edge detector"),
    "edge-x": Builtin(_fixed(EDGE_X), (), "[[1, -1]]: same as edge"),
    "edge-y": Builtin(_fixed(EDGE_X.T), (), "[[1], [-1]]: horizontal-edge detector"),
    "sobel-x": Builtin(_fixed(SOBEL_X), (), "Sobel derivative along x (vertical edges)"),
    "sobel-y": Builtin(_fixed(SOBEL_X.T), (), "Sobel derivative along y (horizontal edges)"),
    "scharr-x": Builtin(_fixed(SCHARR_X), (), "Scharr derivative along x"),
    "scharr-y": Builtin(_fixed(SCHARR_X.T), (), "Scharr derivative along y"),
    "prewitt-x": Builtin(_fixed(PREWITT_X), (), "Prewitt derivative along x"),
    "prewitt-y": Builtin(_fixed(PREWITT_X.T), (), "Prewitt derivative along y"),
    "roberts-x": Builtin(_fixed(ROBERTS_X), (), "Roberts cross [[1, 0], [0, -1]]"),
    "roberts-y": Builtin(_fixed(ROBERTS_Y), (), "Roberts cross [[0, 1], [-1, 0]]"),
    "laplacian": Builtin(_fixed(LAPLACIAN), (), "4-neighbour Laplacian, centre -4"),
    "laplacian8": Builtin(_fixed(LAPLACIAN8), (), "8-neighbour Laplacian, centre -8"),
    "sharpen": Builtin(_fixed(SHARPEN), (), "identity plus the negative 4-neighbour Laplacian"),
    "emboss": Builtin(_fixed(EMBOSS), (), "relief from the top left over the picture (sums to 1)"),
    "box": Builtin(box, ("size",), "box:N, N×N mean (N default 3)"),
    "gaussian": Builtin(
        gaussian,
        ("sigma", "size", "truncate"),
        "gaussian:sigma=S[,size=N|truncate=T], blur summing to 1, to 4σ (scipy's size)",
    ),
    "log": Builtin(
        log,
        ("sigma", "size", "truncate"),
        "log:sigma=S[,size=N|truncate=T], Laplacian of Gaussian, sum 0",
    ),
    "motion": Builtin(
        motion, ("length", "angle"), "motion:length=L,angle=A, linear motion blur (degrees, CCW)"
    ),
    "diff": Builtin(
        diff,
        ("order", "axis"),
        "diff:order=D[,axis=x|y], finite difference of order D",
        string_params=("axis",),
    ),
    "directional": Builtin(
        directional, ("angle",), "directional:angle=A, cos A·sobel-x + sin A·sobel-y"
    ),
    "unsharp": Builtin(
        unsharp,
        ("sigma", "amount", "size", "truncate"),
        "unsharp:sigma=S,amount=A[,size=N|truncate=T], unsharp mask, sum 1",
    ),
}
