"""Kernel files and text: reading ``-k @FILE`` (``.txt``, ``.csv``, ``.npy``, ``.json``) and
inline matrices, and writing kernels back (``convtool kernels``, ``learn --output``).

A file holds one 2-D kernel (a :class:`Kernel`) or, 3-D or 4-D, per-channel kernels or a layer
(a :class:`~convtool.kernels.layer.Layer`, whose text form is in
:mod:`convtool.kernels.layer_forms`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

import numpy as np

from convtool.errors import KernelError, quoted
from convtool.io.matrix import iter_lines, parse_kernel_matrix, read_npy_header
from convtool.io.source import read_at_most
from convtool.kernels.layer import MAX_LAYER_CHANNELS, Layer
from convtool.kernels.layer_forms import (
    BIAS_RE,
    finite_float,
    format_layer,
    format_number,
    has_channel_blocks,
    layer_from_json,
    nesting,
    parse_layer_text,
)
from convtool.kernels.value import MAX_KERNEL_SIDE, Kernel, check_rows, validate_weights

JSON_KEYS = ("kernel", "bias")
"""The keys of a JSON kernel object."""

MAX_JSON_NESTING = 4
"""Lists in lists a JSON kernel may nest: rows (2), per-channel kernels (3), a layer (4)."""


_LONG_JSON_ROW = re.compile(
    rf"\[(?:[^\[\],]*,){{{MAX_KERNEL_SIDE}}}"  # a list of numbers
    rf"|\[\s*(?:\[[^\[\]]*\]\s*,\s*){{{MAX_KERNEL_SIDE}}}"  # a list of lists of numbers
)
"""A JSON list of numbers, or of lists of numbers (rows), with more than
:data:`MAX_KERNEL_SIDE` entries (as many commas)."""


def _parse_json_matrix(text: str, what: str) -> object:
    """JSON kernel data: nested lists of numbers, or an object of :data:`JSON_KEYS` holding
    them; KernelError for anything else (strings, booleans, duplicate or unknown keys)."""
    too_long = _LONG_JSON_ROW.search(text)
    if too_long is not None:  # refused before json builds a list of every number
        raise KernelError(
            f"{what}: a list of more than {MAX_KERNEL_SIDE} numbers or rows (at character "
            f"{too_long.start() + 1}); the largest kernel side convtool accepts is "
            f"{MAX_KERNEL_SIDE}"
        )
    try:
        # every integer read as a float: no digit limit, and a kernel's weights are floats
        data = json.loads(text, object_pairs_hook=_json_object(what), parse_int=float)
    except json.JSONDecodeError as exc:
        raise KernelError(f"{what}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise KernelError(
            f"{what}: JSON nested too deep; a kernel nests at most {MAX_JSON_NESTING} lists"
        ) from None
    if isinstance(data, dict):
        unknown = [key for key in data if key not in JSON_KEYS]
        if unknown:
            raise KernelError(
                f"{what}: unknown key {unknown[0]!r}; a JSON kernel object holds "
                + " and ".join(repr(key) for key in JSON_KEYS)
            )
        if "kernel" not in data:
            raise KernelError(f'{what}: a JSON kernel file needs a "kernel" key')
        for key, value in data.items():
            _check_json_numbers(value, f"{what}: {key!r}")
        return data
    _check_json_numbers(data, what)
    return check_rows(data, what)


def _json_object(what: str) -> Callable[[list[tuple[str, object]]], dict[str, object]]:
    def build(pairs: list[tuple[str, object]]) -> dict[str, object]:
        keys = [key for key, _ in pairs]
        twice = next((key for key in keys if keys.count(key) > 1), None)
        if twice is not None:
            raise KernelError(f"{what}: the key {twice!r} is given twice; give it once")
        return dict(pairs)

    return build


def _check_json_numbers(data: object, what: str) -> None:
    """KernelError unless ``data`` is a number or lists (at most :data:`MAX_JSON_NESTING` deep)
    of numbers: no strings, booleans, nulls or objects."""
    level = [data]
    for _ in range(MAX_JSON_NESTING + 1):
        lists = [item for item in level if isinstance(item, list)]
        for item in level:
            if not isinstance(item, list) and (
                isinstance(item, bool) or not isinstance(item, (int, float))
            ):
                shown = json.dumps(item)
                shown = shown if len(shown) <= 40 else shown[:37] + "..."
                raise KernelError(
                    f"{what}: holds {shown}, which is not a number; a kernel holds rows of "
                    "numbers such as [[1, 0, -1], [2, 0, -2]]"
                )
        if not lists:
            return
        level = [entry for item in lists for entry in item]
    raise KernelError(f"{what}: lists nested more than {MAX_JSON_NESTING} deep; a kernel is rows")


def parse_matrix_text(text: str, what: str) -> np.ndarray:
    """Kernel weights from rows of numbers (``io.matrix``'s text format): KernelError for
    ragged rows, non-numbers, an empty matrix and weights no kernel may have."""
    return validate_weights(parse_kernel_matrix(text, what, MAX_KERNEL_SIDE), what)


def load_kernel_file(path_text: str) -> Kernel | Layer:
    """Read a kernel file: ``.txt``/``.csv`` rows (``# bias: B`` optional), ``.npy``, ``.json``.

    A 2-D kernel is a :class:`Kernel`; 3-D (C, kh, kw) or 4-D (C_out, C_in, kh, kw) weights, or a
    text file of blocks headed ``# channel o, i``, a :class:`~convtool.kernels.layer.Layer`.
    """
    path = Path(path_text)
    # '@~/k.txt': no shell expands a '~' after '@'; '~nobody/k.txt' is left as it is
    with contextlib.suppress(RuntimeError):
        path = path.expanduser()
    what = f"kernel file {path_text!r}"
    if not path_text:
        raise KernelError("'@' needs a file name, e.g. -k @kernel.txt")
    try:
        if path.suffix.lower() == ".npy":
            weights = _load_npy_kernel(path, what)
            if weights.ndim > 2:
                return Layer(weights, None, path.name)
            return Kernel(validate_weights(weights, what), path.name)
        raw = _read_kernel_source(path, what)
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
        return kernel_from_json(text, what, path.name)
    if has_channel_blocks(text):
        return parse_layer_text(text, what, path.name)
    bias = 0.0
    rows = []
    for number, line in enumerate(iter_lines(text), 1):
        match = BIAS_RE.match(line)
        if match:
            bias = finite_float(match.group(1), f"{what}: bias")
        if line.split("#", 1)[0].strip():
            rows.append((number, line))
            if len(rows) > MAX_KERNEL_SIDE:  # refused now, not once all of it is read
                raise KernelError(
                    f"{what}: more than {MAX_KERNEL_SIDE} rows (line {number}); the largest "
                    f"kernel side convtool accepts is {MAX_KERNEL_SIDE}"
                )
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
    at most 4-D, no side over :data:`MAX_KERNEL_SIDE`, no more than
    :data:`~convtool.kernels.layer.MAX_LAYER_CHANNELS` channels."""
    with open(path, "rb") as fp:
        try:
            shape, dtype = read_npy_header(fp)
        except ValueError as exc:
            raise KernelError(f"{what}: not a numeric .npy array ({exc})") from None
        if dtype.kind not in "biuf":
            held = "Python objects (never unpickled)" if dtype.hasobject else f"{dtype} values"
            raise KernelError(f"{what}: holds {held}; a kernel needs real numbers")
        if len(shape) > 4:
            raise KernelError(
                f"{what}: has {len(shape)} dimensions, shape {tuple(shape)}; a kernel is a 2-D "
                "matrix, per-channel kernels (C, kh, kw), a layer (C_out, C_in, kh, kw)"
            )
        if len(shape) > 2 and max(shape[:-2]) > MAX_LAYER_CHANNELS:
            raise KernelError(
                f"{what}: shape {tuple(shape)} has more than {MAX_LAYER_CHANNELS} channels"
            )
        if shape and max(shape[-2:]) > MAX_KERNEL_SIDE:
            raise KernelError(
                f"{what}: is {'x'.join(str(n) for n in shape)}; the largest kernel side convtool "
                f"accepts is {MAX_KERNEL_SIDE}"
            )
        fp.seek(0)
        try:
            return np.load(fp, allow_pickle=False)
        except (ValueError, EOFError) as exc:
            raise KernelError(f"{what}: not a numeric .npy array ({exc})") from None


def kernel_from_json(text: str, what: str, name: str) -> Kernel | Layer:
    """A kernel from JSON: rows, or ``{"kernel": rows, "bias": b}``; kernels nested 3 or 4
    deep are a layer, ``{"kernel": [[[...]]], "bias": [b0, b1, ...]}``."""
    data = _parse_json_matrix(text, what)
    bias: object = 0.0
    if isinstance(data, dict):
        if "kernel" not in data:
            raise KernelError(f'{what}: a JSON kernel file needs a "kernel" key')
        if nesting(data["kernel"]) > 2:
            return layer_from_json(data["kernel"], data.get("bias"), what, name)
        bias = data.get("bias", 0.0)
        data = check_rows(data["kernel"], what)
    elif nesting(data) > 2:
        return layer_from_json(data, None, what, name)
    if isinstance(bias, bool) or not isinstance(bias, (int, float)):
        raise KernelError(f"{what}: bias must be a number; got {bias!r}")
    return Kernel(validate_weights(data, what), name, finite_float(str(bias), f"{what}: bias"))


def format_kernel(kernel: Kernel | Layer) -> str:
    """The kernel as the text format ``-k @FILE`` reads and (2-D) ``numpy.loadtxt`` loads; a
    layer as blocks headed ``# channel o, i`` (:func:`.layer_forms.format_layer`)."""
    if isinstance(kernel, Layer):
        return format_layer(kernel)
    name = " ".join(kernel.name.split())  # a spec written over several lines stays one comment
    lines = [f"# kernel: {name}", f"# size: {kernel.shape[0]}x{kernel.shape[1]}"]
    if kernel.bias:
        lines.append(f"# bias: {kernel.bias!r}")
    for row in kernel.weights:
        lines.append(" ".join(format_number(v) for v in row))
    return "\n".join(lines) + "\n"


def save_kernel(kernel: Kernel | Layer, path: str | Path) -> None:
    """Write ``kernel`` (or per-channel kernels, or a layer) where ``-k @FILE`` reads it,
    atomically (temporary file + rename).

    ``.json``: ``{"kernel": [[...]], "bias": b}`` (a layer: ``"bias": [b0, b1, ...]``); ``.npy``:
    the weights alone (refused when there is a nonzero bias); anything else: the text format of
    :func:`format_kernel` (rows of numbers, ``# bias: b``; a layer's blocks headed
    ``# channel o, i``), which ``numpy.loadtxt`` loads for a 2-D kernel.
    """
    from convtool.io.files import write_atomic

    target = Path(path)
    suffix = target.suffix.lower()
    bias = kernel.biases.tolist() if isinstance(kernel, Layer) else kernel.bias
    if suffix == ".npy" and np.any(np.asarray(bias) != 0):
        raise KernelError(
            f"{quoted(target)}: a .npy file holds the weights alone and would lose the bias "
            f"{bias!r}; write .txt or .json instead"
        )
    if not target.parent.is_dir():
        raise KernelError(
            f"cannot write kernel file {str(target)!r}: directory {str(target.parent)!r} does "
            "not exist; create it first"
        )
    if suffix == ".json":
        text = json.dumps({"kernel": kernel.weights.tolist(), "bias": bias}) + "\n"
        payload = text.encode("utf-8")
    elif suffix == ".npy":
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(kernel.weights))
        payload = buffer.getvalue()
    else:
        payload = format_kernel(kernel).encode("utf-8")
    write_atomic(target, payload)


MAX_KERNEL_SOURCE_BYTES = MAX_KERNEL_SIDE * MAX_KERNEL_SIDE * 40 + (16 << 20)
"""The most bytes a text or JSON kernel file may hold: a 1025x1025 kernel written with 40
bytes a number, and room for comments. Larger sources are refused before they are read."""


def _read_kernel_source(path: Path, what: str) -> bytes:
    """The bytes of a text or JSON kernel file, a pipe or a device, refused past
    :data:`MAX_KERNEL_SOURCE_BYTES` without reading further."""
    limit = MAX_KERNEL_SOURCE_BYTES
    with open(path, "rb") as fp:
        info = os.fstat(fp.fileno())
        if stat.S_ISREG(info.st_mode) and info.st_size > limit:
            raise KernelError(
                f"{what}: is {info.st_size >> 20} MiB, more than a kernel of at most "
                f"{MAX_KERNEL_SIDE}x{MAX_KERNEL_SIDE} numbers needs ({limit >> 20} MiB); give "
                "a kernel file, or a large kernel as .npy"
            )
        raw, complete = read_at_most(fp, limit)
    if not complete:
        raise KernelError(
            f"{what}: goes on past {limit >> 20} MiB, more than a kernel of at most "
            f"{MAX_KERNEL_SIDE}x{MAX_KERNEL_SIDE} numbers needs; is it an endless stream?"
        )
    return raw
