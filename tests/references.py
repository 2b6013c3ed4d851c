"""Plain-loop references: the textbook's corr2d, extended with scipy's border modes.

Written for clarity, not speed, and independent of convtool's code: the border extension walks
the index back into range step by step instead of using modular arithmetic.
"""

from __future__ import annotations

import numpy as np


def extend_index(x: int, n: int, mode: str) -> int | None:
    """The source index that position ``x`` of the extended line reads; None means cval."""
    if mode == "constant":
        return x if 0 <= x < n else None
    if mode == "nearest":
        return min(max(x, 0), n - 1)
    if mode == "wrap":
        while x < 0:
            x += n
        while x >= n:
            x -= n
        return x
    while not 0 <= x < n:
        if mode == "reflect":
            x = -x - 1 if x < 0 else 2 * n - 1 - x
        elif mode == "mirror":
            if n == 1:
                return 0
            x = -x if x < 0 else 2 * n - 2 - x
        else:
            raise ValueError(mode)
    return x


def corr2d(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The textbook's corr2d: valid cross-correlation of a 2-D array, in float64."""
    kh, kw = k.shape
    h, w = x.shape
    out = np.zeros((h - kh + 1, w - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = (x[i : i + kh, j : j + kw] * k).sum()
    return out


def correlate(x: np.ndarray, k: np.ndarray, mode: str = "reflect", cval: float = 0.0):
    """Same-size (or valid) correlation of a 2-D or 3-D array, channel by channel, in float64."""
    x = np.asarray(x, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    if x.ndim == 3:
        return np.stack([correlate(x[..., c], k, mode, cval) for c in range(x.shape[2])], axis=-1)
    if mode == "valid":
        return corr2d(x, k)
    h, w = x.shape
    kh, kw = k.shape
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            total = 0.0
            for a in range(kh):
                r = extend_index(i + a - kh // 2, h, mode)
                for b in range(kw):
                    c = extend_index(j + b - kw // 2, w, mode)
                    value = cval if r is None or c is None else x[r, c]
                    total += k[a, b] * value
            out[i, j] = total
    return out


def scipy_correlate(x: np.ndarray, k: np.ndarray, mode: str, cval: float = 0.0) -> np.ndarray:
    """scipy.ndimage.correlate channel by channel, in float64; ``valid`` is the interior of the
    same-size result (the rows and columns whose window lies inside the image)."""
    from scipy import ndimage

    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3:
        return np.stack([scipy_correlate(x[..., c], k, mode, cval) for c in range(x.shape[2])], -1)
    if mode != "valid":
        return ndimage.correlate(x, k, mode=mode, cval=cval)
    kh, kw = k.shape
    full = ndimage.correlate(x, k, mode="constant")
    return full[kh // 2 : kh // 2 + x.shape[0] - kh + 1, kw // 2 : kw // 2 + x.shape[1] - kw + 1]


def conv2d_layer(
    x: np.ndarray, weights: np.ndarray, bias, mode: str = "reflect", cval: float = 0.0
) -> np.ndarray:
    """``torch.nn.functional.conv2d`` with scipy's border modes, in float64: the image (H, W, C_in)
    extended by ``extend_index`` (plain loops), then one einsum over its windows,
    out[y, x, o] = Σ_i Σ_a Σ_b K[o, i, a, b] · X̃[y + a, x + b, i] + bias[o]. Per-channel
    weights (C, kh, kw) are the diagonal layer."""
    x = np.asarray(x, dtype=np.float64)
    x = x[..., np.newaxis] if x.ndim == 2 else x
    k = np.asarray(weights, dtype=np.float64)
    if k.ndim == 3:
        k = np.einsum("oab,oi->oiab", k, np.eye(k.shape[0]))
    _, _, kh, kw = k.shape
    h, w, channels = x.shape
    if mode == "valid":
        ext = x
    else:
        ext = np.empty((h + kh - 1, w + kw - 1, channels))
        for r in range(ext.shape[0]):
            for c in range(ext.shape[1]):
                sr = extend_index(r - kh // 2, h, mode)
                sc = extend_index(c - kw // 2, w, mode)
                ext[r, c] = cval if sr is None or sc is None else x[sr, sc]
    windows = np.lib.stride_tricks.sliding_window_view(ext, (kh, kw), axis=(0, 1))
    return np.einsum("yxiab,oiab->yxo", windows, k) + np.asarray(bias, dtype=np.float64)
