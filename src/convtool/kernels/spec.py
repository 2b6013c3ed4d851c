"""Kernel specs: a built-in name with arguments, an inline matrix, or ``@FILE``."""

from __future__ import annotations

import contextlib
import difflib
import math
import re
from pathlib import Path

import numpy as np

from convtool.errors import KernelError, excerpt
from convtool.io.matrix import NUMBER, read_number
from convtool.kernels.builtins import BUILTINS, Builtin
from convtool.kernels.files import kernel_from_json, load_kernel_file, parse_matrix_text
from convtool.kernels.layer import Layer
from convtool.kernels.magick import is_magick_spec, magick_kernel
from convtool.kernels.value import Kernel
from convtool.kernels.vips import load_vips_matrix

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def load_kernel(spec: str) -> Kernel:
    """Parse a kernel spec into a :class:`Kernel` (weights and bias): one 2-D kernel, applied to
    every channel (:func:`load_any_kernel` also takes per-channel kernels and layers).

    A spec is a built-in name with optional arguments (``laplacian``, ``box:5``, ``gaussian:2``,
    ``gaussian:sigma=2,size=9``), an inline matrix (JSON ``[[0,1],[2,3]]`` or rows separated by
    ``;`` with numbers separated by spaces or commas: ``0 1; 2 3``), or ``@path`` to a ``.txt`` /
    ``.csv`` / ``.npy`` / ``.json`` kernel file or a libvips ``.mat`` (:mod:`.vips`); it may
    also be written ImageMagick's way (``'3x3: ...'``, ``Sobel:90``: :mod:`.magick`). Kernel
    files (but ``.npy``) and inline JSON objects ``{"kernel": [[...]], "bias": B}`` carry a bias.
    """
    kernel = load_any_kernel(spec)
    if isinstance(kernel, Layer):
        raise KernelError(
            f"kernel {spec!r} holds {kernel.describe()} (shape "
            f"{'x'.join(str(n) for n in kernel.weights.shape)}, {kernel.weights.ndim} "
            "dimensions); here a kernel is one 2-D matrix, applied to every channel"
        )
    return kernel


def load_any_kernel(spec: str) -> Kernel | Layer:
    """Parse a kernel spec as :func:`load_kernel` does, and also files and inline JSON of
    per-channel kernels (C, kh, kw) or a layer (C_out, C_in, kh, kw): a
    :class:`~convtool.kernels.layer.Layer`."""
    if not isinstance(spec, str):
        raise KernelError(f"a kernel spec is a string; got {type(spec).__name__}")
    text = spec.strip()
    if not text:
        raise KernelError(
            "empty kernel spec; give a built-in name (see 'convtool kernels'), "
            "a matrix such as '1 -1', or @FILE"
        )
    if text.startswith("@"):
        if text.lower().endswith(".mat"):
            return load_vips_matrix(text[1:])
        return load_kernel_file(text[1:])
    try:
        return _inline_kernel(text, spec)
    except KernelError:
        if _names_a_file(text):
            raise KernelError(
                f"kernel {spec!r}: a kernel file is named with '@'; did you mean -k @{text}?"
            ) from None
        raise


def _inline_kernel(text: str, spec: str) -> Kernel | Layer:
    """A built-in or an inline matrix (``text`` is ``spec`` stripped)."""
    if text.startswith(("[", "{")):
        return kernel_from_json(text, f"kernel {excerpt(spec)}", "inline")
    if is_magick_spec(text):
        return Kernel(magick_kernel(text, spec), text)
    name, _, args = text.partition(":")
    name = name.strip()
    if _NAME_RE.match(name) and not NUMBER.match(name):
        return _builtin(name.lower(), args, spec)
    return Kernel(parse_matrix_text(text, f"kernel {excerpt(spec)}"), "inline")


KERNEL_FILE_SUFFIXES = (".txt", ".csv", ".npy", ".json", ".mat")
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
        raise KernelError(f"kernel {excerpt(spec)}: {exc}") from None
    if not np.all(np.isfinite(weights)):
        raise KernelError(
            f"kernel {excerpt(spec)}: these arguments give weights that are not finite numbers "
            "(an overflow or a division by a tiny number); choose less extreme values"
        )
    return Kernel(weights, spec.strip())


def _parse_args(name: str, entry: Builtin, args: str, spec: str) -> dict[str, object]:
    kwargs: dict[str, object] = {}
    if not args.strip():
        return kwargs
    if not entry.params:
        raise KernelError(f"kernel {name!r} takes no arguments; got {excerpt(spec)}")
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
                    f"kernel {excerpt(spec)}: too many arguments; {name} takes "
                    f"{', '.join(entry.params)}"
                )
            key, value = entry.params[position], part
        if key in kwargs:
            raise KernelError(f"kernel {excerpt(spec)}: argument {key!r} given twice")
        value = value.strip()
        if key in entry.string_params:
            kwargs[key] = value.lower()
            continue
        try:
            number = read_number(value)
        except ValueError:
            raise KernelError(
                f"kernel {excerpt(spec)}: argument {key}={value!r} is not a number"
            ) from None
        if not math.isfinite(number):
            raise KernelError(f"kernel {excerpt(spec)}: argument {key}={value!r} must be finite")
        kwargs[key] = number
    return kwargs


def _example(name: str, entry: Builtin) -> str:
    """The usage at the start of a built-in's summary, e.g. ``gaussian:sigma=S[,size=N]``."""
    head = entry.summary.split(" ", 1)[0].rstrip(",")
    return head if head.startswith(f"{name}:") else f"{name}:{'=…,'.join(entry.params)}=…"
