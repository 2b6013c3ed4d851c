"""ImageMagick's kernel strings, as ``-morphology Convolve`` takes them, with its own matrices.

Two forms (MagickCore's ``morphology.c``): a user array ``'WxH+X+Y: v v v ...'`` (``'N:'`` is
N×N; the origin ``+X+Y`` defaults to ``((W−1)//2, (H−1)//2)``; ``nan`` or ``-`` marks a cell
outside the neighbourhood, weight 0 here), and named kernels ``Unity``, ``Sobel[:angle]``,
``Prewitt[:angle]``, ``Roberts[:angle]``, ``Compass[:angle]``, ``Kirsch[:angle]``,
``Laplacian:N``, ``Gaussian:RxS``, ``Blur:RxS[+angle]``, ``LoG:RxS`` and ``DoG:R,S1,S2``.

ImageMagick's origin is cell (X, Y) for Correlate and Convolve alike; it becomes convtool's
``origin`` (:mod:`convtool.kernels.origin`), written into the weights, so that ``-k SPEC`` is
``-morphology Correlate SPEC`` and ``-k SPEC --convolve`` is ``-morphology Convolve SPEC``.
"""

from __future__ import annotations

import math
import re

import numpy as np

from convtool.errors import KernelError, excerpt
from convtool.io.matrix import read_number
from convtool.kernels.origin import at_origin
from convtool.kernels.value import MAX_KERNEL_SIDE

EPSILON = 1e-12
"""ImageMagick's ``MagickEpsilon``."""

QUANTUM_SCALE = 1.0 / 65535.0
"""``QuantumScale`` of a Q16 build (ImageMagick 6's default), where Gaussian widths stop."""

_ARRAY_RE = re.compile(
    r"^\s*(?P<w>\d+)?(?:x(?P<h>\d+))?(?:\+(?P<x>\d+)\+(?P<y>\d+))?\s*:(?P<values>.*)$",
    re.S | re.ASCII,
)

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_GEOMETRY_RE = re.compile(
    rf"^\s*(?P<r>{_NUMBER})?(?:x(?P<s>{_NUMBER}))?(?P<a>[-+]{_NUMBER})?\s*$", re.ASCII
)

SOBEL = "1,0,-1 2,0,-2 1,0,-1"
ROBERTS = "0,0,0 1,-1,0 0,0,0"
PREWITT = "1,0,-1 1,0,-1 1,0,-1"
COMPASS = "1,1,-1 1,-2,-1 1,1,-1"
KIRSCH = "5,-3,-3 5,0,-3 5,-3,-3"
LAPLACIANS = {
    0: "-1,-1,-1 -1,8,-1 -1,-1,-1",
    1: "0,-1,0 -1,4,-1 0,-1,0",
    2: "-2,1,-2 1,4,1 -2,1,-2",
    3: "1,-2,1 -2,4,-2 1,-2,1",
    5: "-4,-1,0,-1,-4 -1,2,3,2,-1 0,3,4,3,0 -1,2,3,2,-1 -4,-1,0,-1,-4",
    7: "-10,-5,-2,-1,-2,-5,-10 -5,0,3,4,3,0,-5 -2,3,6,7,6,3,-2 -1,4,7,8,7,4,-1 "
    "-2,3,6,7,6,3,-2 -5,0,3,4,3,0,-5 -10,-5,-2,-1,-2,-5,-10",
    15: "0,0,-1,0,0 0,-1,-2,-1,0 -1,-2,16,-2,-1 0,-1,-2,-1,0 0,0,-1,0,0",
    19: "0,-1,-1,-2,-2,-2,-1,-1,0 -1,-2,-4,-5,-5,-5,-4,-2,-1 -1,-4,-5,-3,0,-3,-5,-4,-1 "
    "-2,-5,-3,12,24,12,-3,-5,-2 -2,-5,0,24,40,24,0,-5,-2 -2,-5,-3,12,24,12,-3,-5,-2 "
    "-1,-4,-5,-3,0,-3,-5,-4,-1 -1,-2,-4,-5,-5,-5,-4,-2,-1 0,-1,-1,-2,-2,-2,-1,-1,0",
}
"""``Laplacian:N``'s grids, ImageMagick's (N = 0 also for any unlisted N, as there)."""

ROTATABLE = {"sobel": SOBEL, "roberts": ROBERTS, "prewitt": PREWITT, "compass": COMPASS,
             "kirsch": KIRSCH}  # fmt: skip
BLURS = ("gaussian", "log", "dog", "blur")
NAMES = ("unity", *ROTATABLE, "laplacian", *BLURS)
"""ImageMagick's names convtool reads (compared without case, as ImageMagick does)."""


def is_magick_spec(text: str) -> bool:
    """Whether ``text`` is written ImageMagick's way rather than convtool's.

    A user array has a ``W[xH][+X+Y]:`` prefix (convtool's matrices have no colon); a name
    convtool lacks (``Sobel``, ``Kirsch``, ``Blur``...) is ImageMagick's; of the names both
    have, ``laplacian`` with an argument (``Laplacian:0``) and ``gaussian`` or ``log`` with
    ImageMagick's ``RxS`` geometry are ImageMagick's, and the rest convtool's.
    """
    text = text.split(";", 1)[0]  # ImageMagick's list of kernels: refused by magick_kernel
    if _ARRAY_RE.match(text):
        return True
    name, colon, args = text.partition(":")
    name = name.strip().lower()
    if name in ("unity", "blur", "dog", *ROTATABLE):
        return True
    if name == "laplacian":
        return bool(colon and args.strip())
    if name in ("gaussian", "log"):
        return "x" in args.lower() and "=" not in args
    return False


def magick_kernel(text: str, spec: str) -> np.ndarray:
    """The weights of an ImageMagick kernel string, its origin written in (odd sizes)."""
    what = f"kernel {excerpt(spec)}"
    if ";" in text:
        raise KernelError(
            f"{what}: ImageMagick's ';' separates a list of kernels; give each one with its "
            "own -k (applied in turn), or with --combine"
        )
    match = _ARRAY_RE.match(text)
    if match:
        return _user_array(match, what)
    name, _, args = text.partition(":")
    return _named(name.strip().lower(), args.strip(), what)


def _user_array(match: re.Match[str], what: str) -> np.ndarray:
    w_text, h_text = match["w"], match["h"]
    if w_text is None and h_text is None:
        raise KernelError(f"{what}: the size before ':' is missing; write e.g. '3x3: ...'")
    width = max(int(w_text or h_text), 1)
    height = max(int(h_text or width), 1)
    if max(width, height) > MAX_KERNEL_SIDE:
        raise KernelError(f"{what}: is {width}x{height}; the largest side is {MAX_KERNEL_SIDE}")
    x = int(match["x"]) if match["x"] is not None else (width - 1) // 2
    y = int(match["y"]) if match["y"] is not None else (height - 1) // 2
    if x >= width or y >= height:
        raise KernelError(
            f"{what}: origin +{x}+{y} is outside the {width}x{height} kernel; X must be below "
            f"{width} and Y below {height}"
        )
    tokens = [t for t in re.split(r"[\s,]+", match["values"].strip()) if t]
    if len(tokens) != width * height:
        raise KernelError(
            f"{what}: {width}x{height} needs {width * height} values; got {len(tokens)}"
        )
    values = [math.nan if t.lower() in ("nan", "-") else _number(t, what) for t in tokens]
    grid = np.array(values, dtype=np.float64).reshape(height, width)
    if np.all(np.isnan(grid)):
        raise KernelError(f"{what}: every value is nan or '-'; give at least one number")
    # a nan cell is outside the neighbourhood: it adds nothing to the sum
    return _anchor(np.nan_to_num(grid, nan=0.0), x, y, what)


def _number(token: str, what: str) -> float:
    try:
        value = read_number(token)
    except ValueError:
        raise KernelError(
            f"{what}: {token!r} is not a number (nan or - marks a cell outside the kernel)"
        ) from None
    if not math.isfinite(value):
        raise KernelError(f"{what}: {token!r} is not a finite number")
    return value


def _anchor(weights: np.ndarray, x: int, y: int, what: str) -> np.ndarray:
    """ImageMagick's origin cell (x, y) made the centre (convtool's origin)."""
    kh, kw = weights.shape
    return at_origin(weights, (y - kh // 2, x - kw // 2), what)


def _grid(rows: str) -> np.ndarray:
    return np.array([[float(v) for v in row.split(",")] for row in rows.split()])


def _named(name: str, args: str, what: str) -> np.ndarray:
    if name == "unity":
        return np.array([[_geometry(args, what)[0] if args else 1.0]])
    if name in ROTATABLE:
        angle = _geometry(args, what)[0] if args else 0.0
        return rotate(_grid(ROTATABLE[name]), angle)
    if name == "laplacian":
        kind = int(_geometry(args, what)[0]) if args else 0
        return _grid(LAPLACIANS.get(kind, LAPLACIANS[0]))
    if name == "blur":
        radius, sigma, angle = _geometry(args, what)
        return rotate(blur(radius, sigma), angle, one_dimensional=True)
    if name == "dog":
        numbers = [_number(p, what) for p in re.split(r"[,x]", args) if p.strip()]
        if not 1 <= len(numbers) <= 3:
            raise KernelError(f"{what}: DoG takes R,S1,S2 (radius and two sigmas)")
        radius, s1, s2 = [*numbers, 0.0, 0.0][:3]
        return gaussians("dog", radius, s1, s2)
    radius, sigma, _ = _geometry(args, what)
    return gaussians(name, radius, sigma, 0.0)


def _geometry(args: str, what: str) -> tuple[float, float, float]:
    """ImageMagick's ``RxS+A`` argument: (rho, sigma, xi), absent parts 0."""
    match = _GEOMETRY_RE.match(args)
    if not match:
        raise KernelError(
            f"{what}: arguments {args!r} are not ImageMagick's geometry, e.g. 0x2 or 90"
        )
    rho, sigma, xi = (float(match[k]) if match[k] else 0.0 for k in ("r", "s", "a"))
    return rho, sigma, xi


def _width(radius: float, sigma: float, two_d: bool) -> int:
    """``GetOptimalKernelWidth1D/2D``: the side that keeps every tap above QuantumScale."""
    if radius >= 1.0:
        width = int(radius) * 2 + 1
    elif radius > EPSILON:
        width = int(2.0 * math.ceil(radius) + 1.0)
    elif abs(sigma) <= EPSILON:
        width = 3
    else:
        width = _optimal_width(abs(sigma), two_d)
    if width > MAX_KERNEL_SIDE:
        raise KernelError(
            f"ImageMagick kernel with radius {radius:g}, sigma {sigma:g}: needs a side of "
            f"{width}, above the limit {MAX_KERNEL_SIDE}; give a smaller radius or sigma"
        )
    return width


def _optimal_width(sigma: float, two_d: bool) -> int:
    """The loop of ``GetOptimalKernelWidth``: widen from 5 until the outermost tap, over the
    kernel's sum, falls below QuantumScale; the sums kept as running totals (the 2-D sum of a
    Gaussian is the square of the 1-D one)."""
    alpha = 1.0 / (2.0 * sigma * sigma)
    beta = 1.0 / (2 * math.pi * sigma * sigma) if two_d else 1.0 / (math.sqrt(2 * math.pi) * sigma)
    line = 1.0 + 2.0 * math.exp(-alpha) + 2.0 * math.exp(-4.0 * alpha)  # j = 2: width 5
    width = 5
    while width <= MAX_KERNEL_SIDE + 2:
        j = (width - 1) // 2
        normalize = (line * line if two_d else line) * beta
        value = math.exp(-(j * j) * alpha) * beta / normalize
        if value < QUANTUM_SCALE or value < EPSILON:
            break
        width += 2
        line += 2.0 * math.exp(-((j + 1) ** 2) * alpha)
    return width - 2


def gaussians(kind: str, radius: float, sigma: float, sigma2: float) -> np.ndarray:
    """ImageMagick's sampled ``Gaussian``, ``LoG`` and ``DoG`` kernels, then its
    correlate-normalisation (positive taps sum to 1, negative ones to −1)."""
    sigma, sigma2 = abs(sigma), abs(sigma2)
    wide = sigma2 if kind == "dog" and sigma < sigma2 else sigma
    n = _width(radius, wide, two_d=True)
    r = (n - 1) // 2
    u = np.arange(-r, r + 1, dtype=np.float64)
    d2 = u[None, :] ** 2 + u[:, None] ** 2
    unit = np.zeros((n, n))
    unit[r, r] = 1.0
    if kind == "log":
        if sigma > EPSILON:
            a = d2 / (2.0 * sigma * sigma)
            k = (1 - a) * np.exp(-a) / (math.pi * sigma**4)
        else:
            k = unit
    else:
        k = _sampled(d2, sigma, unit)
        if kind == "dog":
            k = k - _sampled(d2, sigma2, unit)
    return _correlate_normalize(k)


def _sampled(d2: np.ndarray, sigma: float, unit: np.ndarray) -> np.ndarray:
    if sigma <= EPSILON:
        return unit.copy()
    return np.exp(-d2 / (2.0 * sigma * sigma)) / (2 * math.pi * sigma * sigma)


def blur(radius: float, sigma: float) -> np.ndarray:
    """ImageMagick's 1-D ``Blur``: a Gaussian sampled three times finer, binned, normalised."""
    sigma = abs(sigma)
    n = _width(radius, sigma, two_d=False)
    k = np.zeros(n)
    if sigma > EPSILON:
        v = (n * 3 - 1) // 2
        s = sigma * 3
        for u in range(-v, v + 1):
            k[(u + v) // 3] += math.exp(-(u * u) / (2.0 * s * s)) / (math.sqrt(2 * math.pi) * s)
    else:
        k[(n - 1) // 2] = 1.0
    return _correlate_normalize(k[None, :])


def _correlate_normalize(k: np.ndarray) -> np.ndarray:
    """``CalcKernelMetaData`` then ``ScaleKernelInfo(…, CorrelateNormalizeValue)``."""
    k = np.where(np.abs(k) < EPSILON, 0.0, k)
    positive = k[k > 0].sum()
    negative = k[k < 0].sum()
    pos_scale = positive if abs(positive) >= EPSILON else 1.0
    neg_scale = -negative if abs(negative) >= EPSILON else 1.0
    return np.where(k >= 0, k / pos_scale, k / neg_scale)


def rotate(k: np.ndarray, angle: float, one_dimensional: bool = False) -> np.ndarray:
    """``RotateKernelInfo`` for centred kernels: 45° steps of a 3×3, 90° turns, 180° flips."""
    angle = math.fmod(angle, 360.0)
    if angle < 0:
        angle += 360.0
    if angle > 337.5 or angle <= 22.5:
        return k
    if one_dimensional:  # Blur: only transposes (a 180° turn of a symmetric curve is useless)
        if 135.0 < angle <= 225.0:
            return k
        if 225.0 < angle <= 315.0:
            angle -= 180
    if 22.5 < math.fmod(angle, 90.0) <= 67.5 and k.shape == (3, 3):
        ring = [(0, 0), (1, 0), (2, 0), (2, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
        turned = k.copy()
        for (r0, c0), (r1, c1) in zip(ring, ring[1:] + ring[:1], strict=True):
            turned[r0, c0] = k[r1, c1]
        k = turned
        angle = math.fmod(angle + 315.0, 360.0)
    if 45.0 < math.fmod(angle, 180.0) <= 135.0:
        if 1 in k.shape:
            k = k.T.copy()
            angle = math.fmod(angle + (270.0 if k.shape[1] == 1 else 90.0), 360.0)
        else:
            k = np.rot90(k, -1).copy()
            angle = math.fmod(angle + 270.0, 360.0)
    if 135.0 < angle <= 225.0:
        k = k[::-1, ::-1].copy()
    return k
