"""Kernels as data: the kernel value, the built-in grids and factories, and spec parsing.

Every matrix here is in correlation orientation: ``out[i, j] = Σ K[a, b] · X[i + a − kh//2,
j + b − kw//2]``. ``convolve`` flips it; nothing in this module does.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convtool.errors import KernelError
from convtool.npyfile import read_npy_header

MAX_KERNEL_SIDE = 1025
"""The largest kernel side convtool accepts, for kernel specs, files and ``learn --size``."""

MAX_KERNEL_MAGNITUDE = float(np.finfo(np.float32).max)
"""The largest Σ|K| accepted: a kernel beyond it overflows float32 images, whose values are in
[0, 1] (and its sum, for ``--normalize``, may overflow float64)."""

ZERO_SUM_RTOL = 1e-12
"""A kernel is zero-sum when ``|ΣK| ≤ ZERO_SUM_RTOL · Σ|K|``: never divide by a rounding residue."""


@dataclass(frozen=True, eq=False)
class Kernel:
    """A correlation kernel: read-only float64 weights, the spec it came from, and a bias.

    The bias is added right after this kernel is applied (``X ⋆ K + bias``); it comes from kernel
    files (``# bias: B``, ``{"bias": B}``) and from ``convtool learn --bias``.
    """

    weights: np.ndarray
    name: str = "custom"
    bias: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise KernelError(f"a kernel's name is a string; got {self.name!r}")
        w = validate_weights(self.weights, self.name)
        w.setflags(write=False)
        object.__setattr__(self, "weights", w)
        bias = self.bias
        if isinstance(bias, bool) or not isinstance(bias, (int, float, np.integer, np.floating)):
            raise KernelError(f"kernel {self.name!r}: bias {bias!r} is not a real number")
        if not math.isfinite(bias):
            raise KernelError(f"kernel {self.name!r}: bias {bias!r} is not a finite number")
        # a plain float: numpy scalars would be written 'np.float32(0.1)' in kernel files
        object.__setattr__(self, "bias", float(bias))

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.weights.shape[0]), int(self.weights.shape[1]))

    @property
    def is_zero_sum(self) -> bool:
        return is_zero_sum(self.weights)

    def flipped(self) -> Kernel:
        """The same kernel turned 180° (``K[::-1, ::-1]``): correlation with it is convolution."""
        return Kernel(self.weights[::-1, ::-1], f"flipped {self.name}", self.bias)

    def normalized(self) -> Kernel:
        """The kernel divided by its sum; a zero-sum kernel is returned as it is."""
        if self.is_zero_sum:
            return self
        return Kernel(self.weights / self.weights.sum(), f"normalized {self.name}", self.bias)


def is_zero_sum(weights: np.ndarray) -> bool:
    """True when ``|ΣK| ≤ 1e-12·Σ|K|``, the test ``--normalize`` uses before dividing by ΣK."""
    w = np.asarray(weights, dtype=np.float64)
    return bool(abs(w.sum()) <= ZERO_SUM_RTOL * np.abs(w).sum())


def validate_weights(weights: object, what: str = "kernel") -> np.ndarray:
    """Return ``weights`` as a fresh 2-D float64 array, or raise a KernelError saying why not."""
    if isinstance(weights, (list, tuple)):
        _check_rows([list(r) if isinstance(r, (tuple, np.ndarray)) else r for r in weights], what)
    try:
        raw = np.asarray(weights)
        if raw.dtype.kind == "c":
            raise KernelError(
                f"{what}: has complex entries; a kernel needs real numbers (pass .real, or "
                "filter the real and imaginary parts separately)"
            )
        w = np.array(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise KernelError(
            f"{what}: not a matrix of numbers ({exc}); "
            "write rows of numbers, e.g. '1 0 -1; 2 0 -2; 1 0 -1'"
        ) from None
    if w.ndim == 1:
        w = w[np.newaxis, :]
    if w.ndim != 2:
        raise KernelError(
            f"{what}: has {w.ndim} dimensions, shape {w.shape}; a kernel is a 2-D matrix "
            "(one kernel is applied to every colour channel)"
        )
    if w.size == 0:
        raise KernelError(f"{what}: is empty (shape {w.shape}); give at least one number")
    if max(w.shape) > MAX_KERNEL_SIDE:
        raise KernelError(
            f"{what}: is {w.shape[0]}x{w.shape[1]}; the largest kernel side convtool accepts is "
            f"{MAX_KERNEL_SIDE}"
        )
    if not np.all(np.isfinite(w)):
        raise KernelError(f"{what}: has NaN or infinite entries; every entry must be finite")
    with np.errstate(over="ignore"):
        magnitude = float(np.abs(w).sum())
    if not magnitude <= MAX_KERNEL_MAGNITUDE:
        raise KernelError(
            f"{what}: its entries are so large that their magnitudes sum to {magnitude:g}, "
            f"beyond {MAX_KERNEL_MAGNITUDE:g} (float32 images would overflow); scale the kernel "
            "down and use --scale for the factor"
        )
    return np.ascontiguousarray(w)


# --- built-in grids -----------------------------------------------------------------------

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


# --- factories ----------------------------------------------------------------------------


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


# --- spec parsing -------------------------------------------------------------------------

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_NUMBER_RE = re.compile(
    r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$|^[+-]?(nan|inf|infinity)$", re.I
)


def load_kernel(spec: str) -> Kernel:
    """Parse a kernel spec into a :class:`Kernel` (weights and bias).

    A spec is a built-in name with optional arguments (``laplacian``, ``box:5``, ``gaussian:2``,
    ``gaussian:sigma=2,size=9``), an inline matrix (JSON ``[[0,1],[2,3]]`` or rows separated by
    ``;`` with numbers separated by spaces or commas: ``0 1; 2 3``), or ``@path`` to a ``.txt`` /
    ``.csv`` / ``.npy`` / ``.json`` kernel file. Kernel files (but ``.npy``) and inline JSON
    objects ``{"kernel": [[...]], "bias": B}`` carry a bias.
    """
    if not isinstance(spec, str):
        raise KernelError(f"a kernel spec is a string; got {type(spec).__name__}")
    text = spec.strip()
    if not text:
        raise KernelError(
            "empty kernel spec; give a built-in name (see 'convtool kernels'), "
            "a matrix such as '1 -1', or @FILE"
        )
    if text.startswith("@"):
        return load_kernel_file(text[1:])
    try:
        return _inline_kernel(text, spec)
    except KernelError:
        if _names_a_file(text):
            raise KernelError(
                f"kernel {spec!r}: a kernel file is named with '@'; did you mean -k @{text}?"
            ) from None
        raise


def _inline_kernel(text: str, spec: str) -> Kernel:
    """A built-in or an inline matrix (``text`` is ``spec`` stripped)."""
    if text.startswith(("[", "{")):
        return _kernel_from_json(text, f"kernel {spec!r}", "inline")
    name, _, args = text.partition(":")
    name = name.strip()
    if _NAME_RE.match(name) and not _NUMBER_RE.match(name):
        return _builtin(name.lower(), args, spec)
    return Kernel(parse_matrix_text(text, f"kernel {spec!r}"), "inline")


KERNEL_FILE_SUFFIXES = (".txt", ".csv", ".npy", ".json")
"""The extensions of kernel files (``-k @FILE``)."""


def _names_a_file(text: str) -> bool:
    """Whether a spec that is neither a built-in nor a matrix names a file: an existing one, or
    a name without spaces ending in a kernel file's extension (``ok.csv``, ``k/x.npy``)."""
    with contextlib.suppress(OSError, ValueError):
        if Path(text).is_file():
            return True
    return not re.search(r"\s", text) and text.lower().endswith(KERNEL_FILE_SUFFIXES)


def parse_kernel(spec: str) -> np.ndarray:
    """Parse a kernel spec into its 2-D float64 weights (a bias in a kernel file is not included;
    :func:`load_kernel` returns both).

    >>> parse_kernel("0 1; 2 3")
    array([[0., 1.],
           [2., 3.]])
    >>> parse_kernel("edge")
    array([[ 1., -1.]])
    """
    return load_kernel(spec).weights.copy()


def _builtin(name: str, args: str, spec: str) -> Kernel:
    entry = BUILTINS.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, list(BUILTINS), n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise KernelError(
            f"unknown kernel {name!r}; {hint}'convtool kernels' lists the built-ins, "
            "and a matrix is written like '1 0 -1; 2 0 -2; 1 0 -1'"
        )
    kwargs = _parse_args(name, entry, args, spec)
    try:
        with np.errstate(all="ignore"):  # extreme arguments: refused below, not warned about
            weights = entry.factory(**kwargs)
    except TypeError as exc:
        raise KernelError(f"kernel {spec!r}: {exc}") from None
    if not np.all(np.isfinite(weights)):
        raise KernelError(
            f"kernel {spec!r}: these arguments give weights that are not finite numbers "
            "(an overflow or a division by a tiny number); choose less extreme values"
        )
    return Kernel(weights, spec.strip())


def _parse_args(name: str, entry: Builtin, args: str, spec: str) -> dict[str, object]:
    kwargs: dict[str, object] = {}
    if not args.strip():
        return kwargs
    if not entry.params:
        raise KernelError(f"kernel {name!r} takes no arguments; got {spec!r}")
    for position, part in enumerate(args.split(",")):
        part = part.strip()
        key, eq, value = part.partition("=")
        if eq:
            key = key.strip().lower()
            if key not in entry.params:
                raise KernelError(
                    f"kernel {name!r} has no argument {key!r}; its arguments are "
                    f"{', '.join(entry.params)} (e.g. {_example(name, entry)})"
                )
        else:
            if position >= len(entry.params):
                raise KernelError(
                    f"kernel {spec!r}: too many arguments; {name} takes {', '.join(entry.params)}"
                )
            key, value = entry.params[position], part
        if key in kwargs:
            raise KernelError(f"kernel {spec!r}: argument {key!r} given twice")
        value = value.strip()
        if key in entry.string_params:
            kwargs[key] = value.lower()
            continue
        try:
            number = float(value)
        except ValueError:
            raise KernelError(
                f"kernel {spec!r}: argument {key}={value!r} is not a number"
            ) from None
        if not math.isfinite(number):
            raise KernelError(f"kernel {spec!r}: argument {key}={value!r} must be finite")
        kwargs[key] = number
    return kwargs


def _example(name: str, entry: Builtin) -> str:
    """The usage at the start of a built-in's summary, e.g. ``gaussian:sigma=S[,size=N]``."""
    head = entry.summary.split(" ", 1)[0].rstrip(",")
    return head if head.startswith(f"{name}:") else f"{name}:{'=…,'.join(entry.params)}=…"


def _parse_json_matrix(text: str, what: str) -> object:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KernelError(f"{what}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if isinstance(data, dict):
        return data
    return _check_rows(data, what)


def _check_rows(data: object, what: str) -> object:
    if isinstance(data, list) and data and all(isinstance(r, list) for r in data):
        lengths = {len(r) for r in data}
        if len(lengths) > 1:
            raise KernelError(
                f"{what}: ragged rows (lengths {sorted(lengths)}); every row needs "
                "the same number of entries"
            )
    if isinstance(data, (list, int, float)) and not isinstance(data, bool):
        return data
    raise KernelError(f"{what}: expected a list of rows of numbers")


def parse_matrix_text(text: str, what: str) -> np.ndarray:
    """Rows of numbers separated by ``;`` or new lines, entries by spaces or commas; ``#`` starts
    a comment. Raises KernelError for ragged rows, non-numbers and an empty matrix."""
    rows: list[list[float]] = []
    # comments first: a ';' inside one ('# rows; columns') separates no rows
    uncommented = "\n".join(line.split("#", 1)[0] for line in text.split("\n"))
    for line in re.split(r"[;\n]", uncommented):
        line = line.strip()
        if not line:
            continue
        row = []
        for token in re.split(r"[\s,]+", line):
            if not token:
                continue
            if not _NUMBER_RE.match(token):
                raise KernelError(
                    f"{what}: {token!r} is not a number; write rows of numbers such as "
                    "'1 0 -1; 2 0 -2; 1 0 -1'"
                )
            row.append(float(token))
        if row:
            rows.append(row)
    if not rows:
        raise KernelError(f"{what}: no numbers found; write rows such as '0 1; 2 3'")
    lengths = sorted({len(r) for r in rows})
    if len(lengths) > 1:
        raise KernelError(
            f"{what}: ragged rows (lengths {lengths}); every row needs the same number of entries"
        )
    return validate_weights(rows, what)


_BIAS_RE = re.compile(r"^\s*#\s*bias\s*[:=]\s*(\S+)\s*$", re.I)


def load_kernel_file(path_text: str) -> Kernel:
    """Read a kernel file: ``.txt``/``.csv`` rows (``# bias: B`` optional), ``.npy``, ``.json``."""
    path = Path(path_text)
    # '@~/k.txt': no shell expands a '~' after '@'; '~nobody/k.txt' is left as it is
    with contextlib.suppress(RuntimeError):
        path = path.expanduser()
    what = f"kernel file {path_text!r}"
    if not path_text:
        raise KernelError("'@' needs a file name, e.g. -k @kernel.txt")
    try:
        if path.suffix.lower() == ".npy":
            return Kernel(validate_weights(_load_npy_kernel(path, what), what), path.name)
        raw = path.read_bytes()
    except KernelError:
        raise
    except IsADirectoryError:
        raise KernelError(f"{what}: is a directory; give a kernel file") from None
    except FileNotFoundError:
        raise KernelError(f"{what}: no such file") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise KernelError(f"{what}: cannot be read ({reason})") from None
    try:
        # UTF-16 with its byte-order mark is what Windows PowerShell's '>' writes
        text = raw.decode("utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig")
    except UnicodeDecodeError:
        raise KernelError(f"{what}: not a text file; use .txt, .csv, .json or .npy") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        return _kernel_from_json(text, what, path.name)
    bias = 0.0
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        match = _BIAS_RE.match(line)
        if match:
            bias = _finite_float(match.group(1), f"{what}: bias")
        if line.split("#", 1)[0].strip():
            rows.append((number, line))
    semicolon = next((n for n, line in rows if ";" in line.split("#", 1)[0]), None)
    if len(rows) > 1 and semicolon is not None:
        # 'a;b' on several lines is a ';'-separated CSV (where ',' may be the decimal mark),
        # not rows: refused rather than read as a column
        raise KernelError(
            f"{what}: line {semicolon} holds ';' but each line of a kernel file is one row; "
            "separate the numbers of a row by spaces or commas (a ';'-separated CSV: save it "
            "with ',' between numbers and '.' as the decimal mark)"
        )
    return Kernel(parse_matrix_text(text, what), path.name, bias)


def _load_npy_kernel(path: Path, what: str) -> np.ndarray:
    """A .npy kernel, its header checked before anything is allocated or unpickled: numbers,
    at most 2-D, no side over :data:`MAX_KERNEL_SIDE`."""
    with open(path, "rb") as fp:
        try:
            shape, dtype = read_npy_header(fp)
        except ValueError as exc:
            raise KernelError(f"{what}: not a numeric .npy array ({exc})") from None
        if dtype.kind not in "biuf":
            held = "Python objects (never unpickled)" if dtype.hasobject else f"{dtype} values"
            raise KernelError(f"{what}: holds {held}; a kernel needs real numbers")
        if len(shape) > 2:
            raise KernelError(
                f"{what}: has {len(shape)} dimensions, shape {tuple(shape)}; a kernel is a 2-D "
                "matrix (one kernel is applied to every colour channel)"
            )
        if shape and max(shape) > MAX_KERNEL_SIDE:
            raise KernelError(
                f"{what}: is {'x'.join(str(n) for n in shape)}; the largest kernel side convtool "
                f"accepts is {MAX_KERNEL_SIDE}"
            )
        fp.seek(0)
        try:
            return np.load(fp, allow_pickle=False)
        except (ValueError, EOFError) as exc:
            raise KernelError(f"{what}: not a numeric .npy array ({exc})") from None


def _kernel_from_json(text: str, what: str, name: str) -> Kernel:
    data = _parse_json_matrix(text, what)
    bias: object = 0.0
    if isinstance(data, dict):
        if "kernel" not in data:
            raise KernelError(f'{what}: a JSON kernel file needs a "kernel" key')
        bias = data.get("bias", 0.0)
        data = _check_rows(data["kernel"], what)
    if isinstance(bias, bool) or not isinstance(bias, (int, float)):
        raise KernelError(f"{what}: bias must be a number; got {bias!r}")
    return Kernel(validate_weights(data, what), name, _finite_float(str(bias), f"{what}: bias"))


def _finite_float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise KernelError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise KernelError(f"{what} {text!r} must be finite")
    return value


def format_kernel(kernel: Kernel) -> str:
    """The kernel as the text format ``-k @FILE`` reads and ``numpy.loadtxt`` loads."""
    name = " ".join(kernel.name.split())  # a spec written over several lines stays one comment
    lines = [f"# kernel: {name}", f"# size: {kernel.shape[0]}x{kernel.shape[1]}"]
    if kernel.bias:
        lines.append(f"# bias: {kernel.bias!r}")
    for row in kernel.weights:
        lines.append(" ".join(_format_number(v) for v in row))
    return "\n".join(lines) + "\n"


def _format_number(value: float) -> str:
    if value == 0:
        return "0"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))
