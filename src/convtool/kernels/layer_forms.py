"""A layer's text and JSON forms, which ``-k @FILE``, ``convtool kernels`` and ``learn -o`` use.

Text: a header of comments, then one block per kernel headed ``# channel o, i`` (per-channel
kernels: ``# channel c``), rows of numbers, and a ``# bias: b`` line in the first block of each
output; blocks may come in any order, blank lines and other comments are for the reader. JSON:
``{"kernel": [[[...]]], "bias": [b0, b1, ...]}``, the kernel nested 3 or 4 deep.
"""

from __future__ import annotations

import math
import re

import numpy as np

from convtool.errors import KernelError
from convtool.io.matrix import parse_kernel_matrix, read_number
from convtool.kernels.layer import MAX_LAYER_CHANNELS, Layer, validate_layer_weights
from convtool.kernels.value import validate_weights


def format_layer(layer: Layer) -> str:
    """The layer as text: a header, then one block per kernel headed ``# channel o, i``
    (per channel: ``# channel c``), the first block of each output carrying ``# bias: b``."""
    name = " ".join(layer.name.split())
    kh, kw = layer.shape
    lines = [f"# kernel: {name}", f"# size: {kh}x{kw}"]
    blocks: list[tuple[tuple[int, ...], np.ndarray]]
    if layer.per_channel:
        lines.append(f"# channels: {layer.outputs}, one kernel per channel")
        blocks = [((c,), layer.weights[c]) for c in range(layer.outputs)]
    else:
        lines.append(f"# layer: {layer.inputs} inputs -> {layer.outputs} outputs")
        blocks = [
            ((o, i), layer.weights[o, i]) for o in range(layer.outputs) for i in range(layer.inputs)
        ]
    for index, weights in blocks:
        lines.append("")
        lines.append(f"# channel {', '.join(str(n) for n in index)}")
        if index[-1] == 0 or layer.per_channel:
            lines.append(f"# bias: {float(layer.biases[index[0]])!r}")
        lines.extend(" ".join(format_number(v) for v in row) for row in weights)
    return "\n".join(lines) + "\n"


def format_number(value: float) -> str:
    """A weight as kernel files write it: ``0``, ``3``, or its shortest round-trip repr."""
    if value == 0:
        return "0"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


CHANNEL_RE = re.compile(r"^\s*#\s*channel\s+(\d+)\s*(?:,\s*(\d+)\s*)?$", re.I | re.ASCII)
"""A block header of a layer's text form: ``# channel o, i`` or, per channel, ``# channel c``."""

BIAS_RE = re.compile(r"^\s*#\s*bias\s*[:=]\s*(\S+)\s*$", re.I)
"""A ``# bias: B`` line of a kernel file."""


def has_channel_blocks(text: str) -> bool:
    """Whether kernel-file text is a layer's (a ``# channel`` header on a line of its own)."""
    return any(CHANNEL_RE.match(line) for line in text.splitlines())


class _Block:
    def __init__(self, index: tuple[int, ...], line: int) -> None:
        self.index = index
        self.line = line
        self.rows: list[str] = []
        self.bias: float | None = None


def parse_layer_text(text: str, what: str, name: str) -> Layer:
    """A layer from its text form (see :func:`format_layer`); KernelError naming the line
    for numbers outside a block, missing or repeated blocks, and blocks of different sizes."""
    blocks: list[_Block] = []
    for number, line in enumerate(text.splitlines(), 1):
        header = CHANNEL_RE.match(line)
        if header:
            index = tuple(int(g) for g in header.groups() if g is not None)
            blocks.append(_Block(index, number))
            continue
        bias = BIAS_RE.match(line)
        if bias and not blocks:
            raise KernelError(
                f"{what}: line {number}: a '# bias:' line goes inside the block of its output "
                "channel (after '# channel o, 0')"
            )
        if bias:
            if blocks[-1].bias is not None:
                raise KernelError(f"{what}: line {number}: a second '# bias:' line in one block")
            blocks[-1].bias = finite_float(bias.group(1), f"{what}: line {number}: bias")
        written = line.split("#", 1)[0]
        if not written.strip():
            continue
        if not blocks:
            raise KernelError(
                f"{what}: line {number}: numbers before the first '# channel' line; in a "
                "file of several kernels every kernel is headed '# channel o, i' (or "
                "'# channel c', one kernel per channel)"
            )
        if ";" in written:
            raise KernelError(
                f"{what}: line {number} holds ';'; in a file of several kernels each line is "
                "one row, its numbers separated by spaces or commas"
            )
        blocks[-1].rows.append(written)
    return _assemble(blocks, what, name)


def _assemble(blocks: list[_Block], what: str, name: str) -> Layer:
    arities = {len(b.index) for b in blocks}
    if len(arities) > 1:
        raise KernelError(
            f"{what}: mixes '# channel c' and '# channel o, i' headers; use one form throughout"
        )
    shape = tuple(max(b.index[k] for b in blocks) + 1 for k in range(arities.pop()))
    if max(shape) > MAX_LAYER_CHANNELS:
        raise KernelError(
            f"{what}: a channel index of {max(shape) - 1}; at most "
            f"{MAX_LAYER_CHANNELS} channels are accepted"
        )
    seen: dict[tuple[int, ...], _Block] = {}
    for block in blocks:
        if block.index in seen:
            raise KernelError(
                f"{what}: line {block.line}: channel {_label(block.index)} was given already "
                f"(line {seen[block.index].line})"
            )
        seen[block.index] = block
    missing = [index for index in np.ndindex(*shape) if index not in seen]
    if missing:
        raise KernelError(
            f"{what}: no block for channel {_label(missing[0])}; a file of {len(shape)}-index "
            f"headers up to {_label(tuple(n - 1 for n in shape))} needs all "
            f"{int(np.prod(shape))} of them"
        )
    kernels = []
    for index in np.ndindex(*shape):
        block = seen[index]
        label = f"{what}, channel {_label(index)} (line {block.line})"
        kernels.append(validate_weights(parse_kernel_matrix("\n".join(block.rows), label), label))
    sizes = {k.shape for k in kernels}
    if len(sizes) > 1:
        listed = ", ".join(f"{h}x{w}" for h, w in sorted(sizes))
        raise KernelError(f"{what}: its kernels have different sizes ({listed}); all need one")
    bias = np.zeros(shape[0])
    given: dict[int, int] = {}
    for block in blocks:
        if block.bias is None:
            continue
        o = block.index[0]
        if o in given:
            raise KernelError(
                f"{what}: line {block.line}: output {o} has a '# bias:' line already "
                f"(line {given[o]}); give one per output channel"
            )
        given[o] = block.line
        bias[o] = block.bias
    return Layer(np.array(kernels).reshape(*shape, *sizes.pop()), bias, name)


def _label(index: tuple[int, ...]) -> str:
    return ", ".join(str(n) for n in index)


def finite_float(text: str, what: str) -> float:
    """``text`` as a finite float, else a KernelError: ``{what} 'x' is not a number``."""
    try:
        value = read_number(text)
    except ValueError:
        raise KernelError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise KernelError(f"{what} {text!r} must be finite")
    return value


def nesting(data: object) -> int:
    """How deeply JSON lists nest at their first entries (``[[1]]``: 2; a number: 0)."""
    depth = 0
    while isinstance(data, list) and data:
        depth += 1
        data = data[0]
    return depth


def layer_from_json(kernel: object, bias: object, what: str, name: str) -> Layer:
    """A layer from JSON's ``kernel`` (nested lists, 3 or 4 deep) and ``bias`` (a list with one
    number per output channel, or absent: ``None``)."""
    weights = _nested_numbers(kernel, what, "kernel")
    if bias is not None:
        if not isinstance(bias, list):
            raise KernelError(
                f'{what}: "bias" of {nesting(kernel) - 2}-index kernels is a list with one '
                f"number per output channel; got {bias!r}"
            )
        bias = _nested_numbers(bias, what, "bias")
    return Layer(validate_layer_weights(weights, what), bias, name)


def _nested_numbers(data: object, what: str, key: str) -> np.ndarray:
    """Nested JSON lists of numbers (not booleans, not strings) of one shape, as float64."""
    shape: list[int] = []
    level = data
    while isinstance(level, list):
        shape.append(len(level))
        if not level:
            break
        level = level[0]

    def check(node: object, depth: int) -> None:
        if depth == len(shape):
            if isinstance(node, bool) or not isinstance(node, (int, float)):
                raise KernelError(f'{what}: "{key}" holds {node!r}; every entry is a number')
            return
        if not isinstance(node, list) or len(node) != shape[depth]:
            raise KernelError(
                f'{what}: "{key}" is ragged (lists of different lengths at depth {depth + 1}); '
                "every kernel needs the same shape"
            )
        for item in node:
            check(item, depth + 1)

    check(data, 0)
    return np.array(data, dtype=np.float64).reshape(shape)
