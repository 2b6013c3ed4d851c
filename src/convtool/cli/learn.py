"""``convtool learn``: fit the kernel that turned INPUT into TARGET — parse, delegate, report.

The fitting lives in :mod:`convtool.learn` and the reading in :mod:`convtool.io.read`; this
module turns options into calls, writes the kernel where ``-o`` says and the report on stderr
(or as JSON on stdout).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from convtool.choices import DEFAULT_MAX_PIXELS
from convtool.cli import learn_options as opts
from convtool.cli.app import command
from convtool.cli.env import Env, env_of
from convtool.cli.options import DEFAULT_METHOD
from convtool.cli.process import numba_without_scipy
from convtool.errors import UsageError, quoted

if TYPE_CHECKING:
    from convtool.learn.fit import LearnResult

# numpy and the fitting are imported inside the command, so that ``convtool --help`` and the
# other commands do not load them.


IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".jp2", ".tif", ".tiff", ".bmp", ".gif", ".webp"}
    | {".ppm", ".pgm", ".pbm", ".pnm", ".ico", ".heic", ".avif"}
)
"""Extensions of image files: ``-o`` with one of them is a mistake (learn writes kernels)."""


@command("learn")
def learn_command(
    ctx: typer.Context,
    files: opts.Files,
    size: opts.Size,
    output: opts.Output = None,
    bias: opts.Bias = False,
    method: opts.Method = DEFAULT_METHOD,
    lr: opts.Lr = None,
    epochs: opts.Epochs = None,
    seed: opts.Seed = None,
    convolve: opts.Convolve = False,
    origin: opts.Origin = None,
    gray: opts.Gray = False,
    keep_clipped: opts.KeepClipped = False,
    json_report: opts.JsonReport = False,
    max_pixels: opts.MaxPixels = DEFAULT_MAX_PIXELS,
    allow_long: opts.AllowLong = False,
    channels: opts.Channels = "shared",
) -> None:
    """Fit the kernel K (and with --bias a constant b) that best turns each INPUT into its TARGET.

    Least squares over every pair and channel: Σ (X ⋆ K + b − Y)². A TARGET of the input's
    size is taken as a same-size output (kernel anchored at kh//2, kw//2, border pixels
    ignored); one of (H − kh + 1) × (W − kw + 1) as a valid output. Samples of 8/16-bit targets
    at 0 or the maximum are left out as clipped unless --keep-clipped. The report (kernel,
    bias, RMSE, largest error, R², pixels used and left out, warnings) goes to stderr.

    Examples:

      convtool learn photo.png blurred.png --size 5 -o kernel.txt

      convtool apply photo.png -k @kernel.txt -o again.png

      convtool learn x.txt y.txt --size 1x2 --method gd --lr 0.03 --epochs 10

      convtool learn a.png A.png b.png B.png --size 3 --bias -o k.json --json
    """
    from convtool.io.files import write_output
    from convtool.io.pixels import to_unit
    from convtool.kernels.files import format_kernel, save_kernel
    from convtool.kernels.origin import parse_origin
    from convtool.learn.fit import check_options, learn_kernel, parse_size
    from convtool.learn.pairs import read_pairs

    if len(files) < 2 or len(files) % 2:
        raise UsageError(
            f"learn takes pairs INPUT TARGET; got {len(files)} file{'s' * (len(files) != 1)}"
            + (" (the last one has no target)" if len(files) % 2 else "")
        )
    if files.count("-") > 1:
        raise UsageError("standard input (-) can stand for only one of the files")
    ksize = parse_size(size)
    check_options(method.value, lr=lr, epochs=epochs, seed=seed)
    to_stdout = output is None or output == "-"
    if json_report and to_stdout:
        raise UsageError(
            "--json prints the report on standard output, so the kernel needs a file: add "
            "-o KERNEL_FILE (.txt, .json or .npy)"
        )
    if output is not None and Path(output).suffix.lower() in IMAGE_SUFFIXES:
        raise UsageError(
            f"-o {quoted(output)}: learn writes a kernel, not an image; name the kernel file "
            ".txt, .json or .npy (then 'convtool apply INPUT -k @KERNEL_FILE' filters with it)"
        )
    if bias and output is not None and output.lower().endswith(".npy"):
        raise UsageError(
            f"-o {quoted(output)}: a .npy file holds the weights alone and would lose the fitted "
            "bias; write .txt or .json instead (both hold the bias)"
        )
    if not to_stdout:
        assert output is not None
        clash = [f for f in files if f != "-" and _same_file(f, output)]
        if clash:
            raise UsageError(
                f"-o {quoted(output)} is also one of the files to learn from; choose another name "
                "for the kernel file"
            )
    # 8- and 16-bit pairs as their stored samples: learn then sums them exactly (the same
    # bytes with numba's cache cold or warm); a pair with a float side in [0, 1] floats
    pictures, names = read_pairs(files, gray=gray, max_pixels=max_pixels)
    env = env_of(ctx)
    for message in dict.fromkeys(m for p in pictures for m in p.notes):
        env.note(message)
    for i in range(0, len(pictures), 2):
        if not all(p.data.dtype.kind == "u" for p in pictures[i : i + 2]):
            pictures[i : i + 2] = [to_unit(pictures[i]), to_unit(pictures[i + 1])]
    inputs, targets = pictures[0::2], pictures[1::2]
    epochs_shown = _epochs_to(env)
    with numba_without_scipy():
        result = learn_kernel(
            [p.data for p in inputs],
            [p.data for p in targets],
            ksize,
            bias=bias,
            method=method.value,
            convolve=convolve,
            keep_clipped=keep_clipped,
            clip_limits=[(0.0, 1.0) if p.integer_stored else None for p in targets],
            lr=lr,
            epochs=epochs,
            seed=seed,
            progress=epochs_shown if method.value == "gd" else None,
            names=names,
            origin=parse_origin(origin) if origin is not None else None,
            meter=meter_to(env),
            allow_long=allow_long,
            channels=channels,
        )
    last = len(result.loss_history)
    if result.method == "gd" and last and not shown(last):
        typer.echo(f"epoch {last}, loss {result.loss_history[-1]:.6g}", file=env.stderr)
    if to_stdout:
        write_output(format_kernel(result.kernel).encode("utf-8"), None)
    else:
        assert output is not None
        save_kernel(result.kernel, output)
    if json_report:
        typer.echo(json.dumps({**result.as_dict(), "output": output}, indent=2), file=env.stdout)
        for warning in result.warnings:
            typer.echo(f"warning: {warning}", file=env.stderr)
    else:
        typer.echo(report(result), file=env.stderr, nl=False)


def _same_file(a: str, b: str) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def shown(epoch: int) -> bool:
    """Whether the line of ``epoch`` is shown: the first ten, then 20, 50, 100, 200, 500...
    (a few lines a decade, however many epochs run; the last one is shown after the run)."""
    if epoch <= 10:
        return True
    digits = str(epoch)
    return digits[0] in "125" and set(digits[1:]) == {"0"}


def _epochs_to(env: Env) -> Callable[[int, float], None]:
    """What gradient descent reports after an epoch: one line on stderr, for the epochs
    :func:`shown` picks."""

    def show(epoch: int, loss: float) -> None:
        if shown(epoch):
            typer.echo(f"epoch {epoch}, loss {loss:.6g}", file=env.stderr)

    return show


def meter_to(env: Env, every: float = 1.0) -> Callable[[float], None]:
    """The progress of a long fit: past its first second, a line on stderr at most every
    ``every`` seconds, with the time left estimated from the time so far."""
    from convtool.learn.work import duration

    start = time.monotonic()
    last = [start]

    def show(fraction: float) -> None:
        now = time.monotonic()
        if now - start < 1.0 or now - last[0] < every or not 0 < fraction < 1:
            return
        last[0] = now
        left = (now - start) * (1 - fraction) / fraction
        line = f"learn: {100 * fraction:.0f}% done, about {duration(left)} left"
        typer.echo(line, file=env.stderr)

    return show


def report(result: LearnResult) -> str:
    """The text report ``convtool learn`` prints on stderr (one warning per ``warning:`` line)."""
    from convtool.kernels.layer import Layer

    kh, kw = result.kernel.shape
    orientation = "convolution" if result.convolve else "correlation"
    if result.channels == "shared":
        lines = [f"kernel {kh}x{kw} ({orientation} orientation):", *_grid(result.weights)]
        lines.append(f"bias: {result.bias:.6g}")
        if result.closest and result.closest[0] is not None:
            lines.append(result.closest[0].describe())
    else:
        what = result.kernel.describe() if isinstance(result.kernel, Layer) else "kernels"
        lines = [f"{what} ({orientation} orientation):"]
        blocks = result.weights if result.channels == "mix" else [result.weights]
        for o, block in enumerate(blocks):
            for i, kernel in enumerate(block):
                label = f"channel {o}, {i}" if result.channels == "mix" else f"channel {i}"
                lines += [f"  # {label}", *_grid(kernel)]
        lines.append("biases: " + " ".join(f"{b:.6g}" for b in result.biases))
        for c, match in enumerate(result.closest):
            if match is not None:
                lines.append(f"channel {c} {match.describe()}")
    if result.method == "gd":
        stop = " (stopped early: the loss stopped moving)" if result.stopped_early else ""
        lines.append(f"method: gd, {result.epochs} epochs{stop}, learning rate {result.lr:.6g}")
    else:
        lines.append(f"method: lstsq, rank {result.rank} of {result.unknowns} unknowns")
    lines.append(f"RMSE: {_figure(result.rmse)}")
    lines.append(f"largest error: {_figure(result.max_error)}")
    lines.append(f"R²: {_figure(result.r2)}")
    lines.append(f"pixels used: {result.pixels_used} (each channel counted)")
    lines.append(f"pixels left out as clipped: {result.pixels_clipped}")
    lines += [f"warning: {w}" for w in result.warnings]
    return "\n".join(lines) + "\n"


def _grid(weights: Any) -> list[str]:
    cells = [[f"{v:.6g}" for v in row] for row in weights]
    width = max(len(c) for row in cells for c in row)
    return ["  " + "  ".join(c.rjust(width) for c in row) for row in cells]


def _figure(value: Any) -> str:
    return "n/a" if value is None else f"{value:.6g}"
