"""The layer value: kernels that act per channel or mix channels, with a bias per output.

A :class:`Layer` holds either one kernel per channel, weights (C, kh, kw), or a full
convolutional layer, weights (C_out, C_in, kh, kw), and one bias per output channel::

    per channel   out[c] = corr(x[c], K[c]) + b[c]
    layer         out[o] = Σ_i corr(x[i], K[o, i]) + b[o]

the semantics of ``torch.nn.functional.conv2d`` (cross-correlation). A 2-D kernel shared by
every channel stays a :class:`~convtool.kernels.value.Kernel`. This module also reads and writes
a layer's text form (blocks headed ``# channel o, i``, a ``# bias:`` line per output) and its
JSON form (``{"kernel": [[[...]]], "bias": [b0, b1, ...]}``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from convtool.errors import KernelError
from convtool.io.matrix import parse_kernel_matrix
from convtool.kernels.value import MAX_KERNEL_SIDE, ZERO_SUM_RTOL, validate_weights

MAX_LAYER_CHANNELS = 256
"""The most input or output channels a layer may have (a cap against absurd allocations)."""


@dataclass(frozen=True, eq=False)
class Layer:
    """Per-channel kernels (C, kh, kw) or a layer (C_out, C_in, kh, kw), in correlation
    orientation, read-only float64, with a float64 bias of one value per output channel
    (``None``: zeros)."""

    weights: np.ndarray
    bias: np.ndarray | Sequence[float] | None = None
    name: str = "custom"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise KernelError(f"a layer's name is a string; got {self.name!r}")
        w = validate_layer_weights(self.weights, f"layer {self.name!r}")
        w.setflags(write=False)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "bias", _check_bias(self.bias, w.shape[0], self.name))

    @property
    def per_channel(self) -> bool:
        """Whether this is one kernel per channel (weights (C, kh, kw)), not a mixing layer."""
        return self.weights.ndim == 3

    @property
    def outputs(self) -> int:
        return int(self.weights.shape[0])

    @property
    def inputs(self) -> int:
        return int(self.weights.shape[0] if self.per_channel else self.weights.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        """(kh, kw), the size of each kernel."""
        return (int(self.weights.shape[-2]), int(self.weights.shape[-1]))

    @property
    def biases(self) -> np.ndarray:
        """The bias per output channel, (C_out,) float64 (``bias`` as a typed array)."""
        return np.asarray(self.bias)

    def full(self) -> np.ndarray:
        """The weights as a layer, (C_out, C_in, kh, kw): per-channel kernels on the diagonal."""
        if not self.per_channel:
            return self.weights
        c = self.outputs
        out = np.zeros((c, c, *self.shape))
        out[np.arange(c), np.arange(c)] = self.weights
        return out

    def kernel(self, o: int, i: int) -> np.ndarray:
        """K[o, i], the 2-D kernel from input channel ``i`` to output ``o`` (zeros off the
        diagonal of per-channel kernels)."""
        if self.per_channel:
            return self.weights[o] if o == i else np.zeros(self.shape)
        return self.weights[o, i]

    def describe(self) -> str:
        """``3 per-channel 5x5 kernels`` or ``a 3->1 layer of 5x5 kernels``."""
        kh, kw = self.shape
        if self.per_channel:
            plural = "s" if self.outputs != 1 else ""
            return f"{self.outputs} per-channel {kh}x{kw} kernel{plural}"
        return f"a {self.inputs}->{self.outputs} layer of {kh}x{kw} kernels"

    def flipped(self) -> Layer:
        """Every K[o, i] turned 180°: correlation with it is convolution."""
        return Layer(self.weights[..., ::-1, ::-1], self.bias, f"flipped {self.name}")

    def normalized(self) -> Layer:
        """Each output's kernels divided by their joint sum Σ_i ΣK[o, i] (per channel: each
        kernel by its sum), so a flat grey image stays flat; zero-sum outputs are left as they
        are."""
        w = np.array(self.weights)
        for o in range(self.outputs):
            total = w[o].sum()
            if abs(total) > ZERO_SUM_RTOL * np.abs(w[o]).sum():
                w[o] /= total
        return Layer(w, self.bias, f"normalized {self.name}")


def validate_layer_weights(weights: object, what: str = "layer") -> np.ndarray:
    """``weights`` as a fresh 3-D or 4-D float64 array, each kernel checked as a 2-D kernel is
    (finite, not empty, sides and magnitude in range), or a KernelError saying why not."""
    try:
        raw = np.asarray(weights)
        if raw.dtype.kind not in "biuf":
            raise ValueError(f"dtype {raw.dtype}")
        w = np.array(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise KernelError(f"{what}: not an array of real numbers ({exc})") from None
    if w.ndim not in (3, 4):
        raise KernelError(
            f"{what}: has {w.ndim} dimensions, shape {w.shape}; per-channel kernels are "
            "(C, kh, kw) and a layer (C_out, C_in, kh, kw)"
        )
    channels = w.shape[:-2]
    if w.size and max(channels) > MAX_LAYER_CHANNELS:
        raise KernelError(
            f"{what}: shape {w.shape} has {max(channels)} channels; at most "
            f"{MAX_LAYER_CHANNELS} are accepted"
        )
    if w.size == 0:
        raise KernelError(f"{what}: is empty (shape {w.shape}); give at least one number")
    if max(w.shape[-2:]) > MAX_KERNEL_SIDE:
        raise KernelError(
            f"{what}: its kernels are {w.shape[-2]}x{w.shape[-1]}; the largest kernel side "
            f"convtool accepts is {MAX_KERNEL_SIDE}"
        )
    for index in np.ndindex(*channels):
        validate_weights(w[index], f"{what}, channel {', '.join(str(n) for n in index)}")
    return np.ascontiguousarray(w)


def _check_bias(bias: object, outputs: int, name: str) -> np.ndarray:
    what = f"layer {name!r}"
    if bias is None:
        b = np.zeros(outputs)
    else:
        if isinstance(bias, (list, tuple)) and any(isinstance(v, bool) for v in bias):
            raise KernelError(f"{what}: a bias is a number; got {bias!r}")
        try:
            raw = np.asarray(bias)
            if raw.dtype.kind not in "iuf":
                raise ValueError(f"dtype {raw.dtype}")
            b = np.array(raw, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise KernelError(
                f"{what}: bias {bias!r} is not a list of numbers; give one per output channel"
            ) from None
        if np.ndim(raw) > 1 or b.size != outputs:
            raise KernelError(
                f"{what}: {b.size} bias values for {outputs} output channels; give one per "
                "output channel"
            )
        if not np.all(np.isfinite(b)):
            raise KernelError(f"{what}: bias {b.tolist()} has a value that is not finite")
    b.setflags(write=False)
    return b


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


CHANNEL_RE = re.compile(r"^\s*#\s*channel\s+(\d+)\s*(?:,\s*(\d+)\s*)?$", re.I)
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
        value = float(text)
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
