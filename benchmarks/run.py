"""convtool against the filters installed on this machine, side by side, in one run.

    python benchmarks/run.py                    # every case, writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick            # fewer repeats, 3x3 and 5x5 cases only
    python benchmarks/run.py --cases 3x3 fft --repeat 9 --output /tmp/r.md
    python benchmarks/run.py --list             # the cases and the peers found

Every case is one image, one kernel and one border, timed for convtool and for each peer in
the same process: one warm-up call each (numba's compilation or cache load, OpenCV's thread
pool), then ``--repeat`` rounds in which every tool runs once, in an order that rotates from
round to round, after a short pause (so that one library's spinning worker threads do not
land on the next one's time). The table reports medians and the ratio convtool / peer (lower
is better for convtool); absolute times drift with the machine's load, ratios from one run
much less. Outputs are compared as well, so that every row times the same computation.
Every tool gets fresh output memory every call, as a plain call does, except in the
"preallocated output" rows: there convtool (``output=``) and OpenCV (``dst=``) both write into
an array kept from call to call, as a loop over video frames can.

Peers: OpenCV (``cv2.filter2D``, ``cv2.sepFilter2D``), ``scipy.ndimage.correlate`` (and
``correlate1d`` twice for separable kernels), Pillow ``ImageFilter.Kernel`` (3x3 and 5x5,
uint8 only), and on the command line ImageMagick (``convert -morphology Correlate``) and
libvips (``vips conv``) when they are installed. The command-line peers read and write an
uncompressed PPM / .v file: their time is reported net of the same command copying the
image without filtering (start-up and file input/output subtracted), and the ratio uses
that net time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from machine import cpu_line

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

import convtool  # noqa: E402

cc = importlib.import_module("convtool.core.dispatch")

WIDTH, HEIGHT = 3840, 2160
PAUSE = 0.05  # seconds between timed calls (OpenMP workers stop spinning)


# --- the image and the kernels ----------------------------------------------------------------


def test_image(source: Path, seed: int = 0) -> np.ndarray:
    """A 3840×2160 RGB photograph: ``source`` upscaled (bicubic) plus a little Gaussian noise
    (σ = 2/255), float32 in [0, 1]."""
    from PIL import Image

    with Image.open(source) as im:
        big = im.convert("RGB").resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)
    x = np.asarray(big, dtype=np.float32) / 255
    noise = np.random.default_rng(seed).normal(0, 2 / 255, x.shape).astype(np.float32)
    return np.clip(x + noise, 0, 1)


def kernels() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(42)
    return {
        "laplacian 3x3": convtool.parse_kernel("laplacian"),
        "random 5x5": rng.uniform(-1, 1, (5, 5)) / 12.5,
        "gaussian 15x15": convtool.parse_kernel("gaussian:sigma=2.5,size=15"),
        "random 15x15": rng.uniform(-1, 1, (15, 15)) / 112.5,
        "box 31x31": convtool.parse_kernel("box:31"),
        "random 31x31": rng.uniform(-1, 1, (31, 31)) / 480.5,
    }


def gaussian32(size: int, sigma: float) -> np.ndarray:
    """A Gaussian as a user saves one to a float32 ``.npy``: ``np.float32(np.outer(g, g))``."""
    r = np.arange(size) - size // 2
    g = np.exp(-(r * r) / (2 * sigma * sigma))
    g /= g.sum()
    return np.float32(np.outer(g, g))


def float32_gaussians() -> dict[str, np.ndarray]:
    return {
        "gaussian 15x15 as float32": gaussian32(15, 2.5),
        "gaussian 31x31 σ=5 as float32": gaussian32(31, 5.0),
    }


# --- cases ------------------------------------------------------------------------------------


@dataclass
class Tool:
    name: str
    run: Callable[[], object]
    # a result to compare with convtool's (None: not comparable, e.g. another border)
    compare: bool = True
    note: str = ""


@dataclass
class Case:
    name: str
    target: str  # e.g. "≤ 0.8 × cv2.filter2D"
    convtool: Tool
    peers: list[Tool]
    # name of the peer the target refers to, and the bound on the ratio
    target_peer: str = ""
    target_ratio: float = 0.0
    # command-line peers: (name, filter command, copy command) with the file names filled in
    commands: list[tuple[str, list[str], list[str]]] = field(default_factory=list)
    # outputs agree within this fraction of convtool's largest value, or these many levels
    tolerance: float = 1e-4
    levels: float = 0.0


BORDER_CV = {"mirror": "BORDER_REFLECT_101", "reflect": "BORDER_REFLECT"}


def build_cases(x: np.ndarray, tmp: Path, found: dict[str, str]) -> list[Case]:
    import cv2
    import scipy.ndimage as ndi

    ks = kernels()
    u8 = np.round(x * 255).astype(np.uint8)
    border = "mirror"
    cvb = getattr(cv2, BORDER_CV[border])

    def cv_filter(img: np.ndarray, k: np.ndarray, ddepth: int = -1) -> Callable[[], object]:
        k32 = k.astype(np.float32)
        return lambda: cv2.filter2D(img, ddepth, k32, borderType=cvb)

    def scipy_planes(img: np.ndarray, k: np.ndarray) -> Callable[[], object]:
        k32 = k.astype(np.float32)

        def run() -> np.ndarray:
            out = np.empty(img.shape, np.float32)
            for c in range(img.shape[2]):
                ndi.correlate(img[..., c], k32, output=out[..., c], mode=border)
            return out

        return run

    cases: list[Case] = []
    for name in ("laplacian 3x3", "random 5x5"):
        k = ks[name]
        cases.append(
            Case(
                f"float32 {name}",
                "≤ 0.8 × cv2.filter2D and ≤ 1/15 × scipy.ndimage",
                Tool("convtool", lambda k=k: convtool.correlate(x, k, border=border)),
                [
                    Tool("cv2.filter2D", cv_filter(x, k)),
                    Tool("scipy.ndimage.correlate", scipy_planes(x, k)),
                ],
                "cv2.filter2D",
                0.8,
            )
        )
        cases[-1].peers[1].note = "target ≤ 0.067"
    for name in ("random 15x15", "random 31x31"):
        k = ks[name]
        bound = 0.5 if "15" in name else 1.0
        cases.append(
            Case(
                f"float32 {name}",
                f"≤ {bound} × cv2.filter2D",
                Tool("convtool", lambda k=k: convtool.correlate(x, k, border=border)),
                [Tool("cv2.filter2D", cv_filter(x, k))],
                "cv2.filter2D",
                bound,
            )
        )
    separable = {name: ks[name] for name in ("gaussian 15x15", "box 31x31")}
    separable.update(float32_gaussians())
    for name, k in separable.items():
        factors = cc.separable_factors(k, cc.filtering_precision(x.dtype, k))
        assert factors is not None
        ky, kx = (f.astype(np.float32) for f in factors)
        cases.append(
            Case(
                f"float32 {name} (separable)",
                "≤ 0.8 × cv2.sepFilter2D",
                Tool("convtool", lambda k=k: convtool.correlate(x, k, border=border)),
                [
                    Tool(
                        "cv2.sepFilter2D",
                        lambda kx=kx, ky=ky: cv2.sepFilter2D(x, -1, kx, ky, borderType=cvb),
                    ),
                    Tool("cv2.filter2D", cv_filter(x, k)),
                    Tool(
                        "scipy.ndimage.correlate1d ×2",
                        lambda kx=kx, ky=ky: ndi.correlate1d(
                            ndi.correlate1d(x, kx, axis=1, mode=border), ky, axis=0, mode=border
                        ),
                    ),
                ],
                "cv2.sepFilter2D",
                0.8,
            )
        )
    # a frame loop: both tools write into an array kept from call to call (the rows above
    # give every tool fresh memory, as a plain call does)
    for name in ("laplacian 3x3", "random 5x5"):
        k = ks[name]
        k32 = k.astype(np.float32)
        ours = np.empty(x.shape, np.float32)
        theirs = np.empty(x.shape, np.float32)
        cases.append(
            Case(
                f"float32 {name}, preallocated output",
                "",
                Tool(
                    "convtool",
                    lambda k=k, o=ours: convtool.correlate(x, k, border=border, output=o),
                ),
                [
                    Tool(
                        "cv2.filter2D dst=",
                        lambda k32=k32, o=theirs: cv2.filter2D(x, -1, k32, dst=o, borderType=cvb),
                    )
                ],
            )
        )
    # uint8 → uint8: the command line's path (convert, filter, round, clamp fused)
    for name in ("laplacian 3x3", "random 5x5", "random 15x15"):
        k = ks[name]
        if "laplacian" in name:
            k = convtool.parse_kernel("sharpen")  # a kernel whose uint8 output is a picture
            label = "sharpen 3x3"
        else:
            k = k * 12 + (np.arange(k.size).reshape(k.shape) == k.size // 2)
            label = name + " + identity"
        peers = [Tool("cv2.filter2D u8→u8", cv_filter(u8, k))]
        if k.shape[0] <= 5:
            peers.append(pillow_tool(u8, k))
        small = k.shape[0] <= 5
        case = Case(
            f"uint8→uint8 {label}, correlate(u8, k, output=np.uint8)",
            "≤ 1.0 × cv2.filter2D u8→u8" if small else "",
            Tool(
                "convtool",
                lambda k=k: convtool.correlate(u8, k, border=border, output=np.uint8),
            ),
            peers,
            "cv2.filter2D u8→u8" if small else "",
            1.0,
            levels=1.0,  # rounding of ties may differ by one level
        )
        if k.shape[0] <= 5:
            case.commands = command_peers(u8, k, tmp, found)
        cases.append(case)
    # the same through numpy after a float result: what the API offered before output=np.uint8
    k = convtool.parse_kernel("sharpen")
    cases.append(
        Case(
            "uint8→uint8 sharpen 3x3, np.clip(np.rint(correlate(u8, k)), 0, 255)",
            "",
            Tool(
                "convtool",
                lambda k=k: np.clip(
                    np.rint(convtool.correlate(u8, k, border=border)), 0, 255
                ).astype(np.uint8),
            ),
            [Tool("cv2.filter2D u8→u8", cv_filter(u8, k))],
            levels=1.0,
        )
    )
    # uint8 in, float32 out: values as they are
    k5 = ks["random 5x5"]
    cases.append(
        Case(
            "uint8→float32 random 5x5",
            "",
            Tool("convtool", lambda: convtool.correlate(u8, k5, border=border)),
            [Tool("cv2.filter2D u8→f32", cv_filter(u8, k5, cv2.CV_32F))],
        )
    )
    # large kernels through the FFT path, forced
    k31 = ks["random 31x31"]
    cases.append(
        Case(
            "float32 random 31x31, method=fft",
            "",
            Tool("convtool", lambda: convtool.correlate(x, k31, border=border, method="fft")),
            [Tool("cv2.filter2D", cv_filter(x, k31))],
        )
    )
    return cases


def pillow_tool(u8: np.ndarray, k: np.ndarray) -> Tool:
    from PIL import Image, ImageFilter

    im = Image.fromarray(u8)
    # Pillow convolves (flips the kernel) and extends borders by repeating the edge pixel;
    # flip it here so that the interior equals the correlation
    flipped = k[::-1, ::-1].ravel().tolist()
    kernel = ImageFilter.Kernel(k.shape[::-1], flipped, scale=1, offset=0)
    return Tool(
        "Pillow ImageFilter.Kernel",
        lambda: np.asarray(im.filter(kernel)),
        compare=False,
        note="border: edge pixel repeated",
    )


def command_peers(
    u8: np.ndarray, k: np.ndarray, tmp: Path, found: dict[str, str]
) -> list[tuple[str, list[str], list[str]]]:
    """ImageMagick and libvips on the command line, with the input written once."""
    commands = []
    kh, kw = k.shape
    ppm = tmp / "in.ppm"
    if not ppm.exists():
        from PIL import Image

        Image.fromarray(u8).save(ppm)
    if "convert" in found:
        values = ",".join(f"{v:.9g}" for v in k.ravel())
        commands.append(
            (
                "ImageMagick convert",
                [
                    found["convert"],
                    str(ppm),
                    "-virtual-pixel",
                    "mirror",
                    "-morphology",
                    "Correlate",
                    f"{kw}x{kh}: {values}",
                    str(tmp / "im.ppm"),
                ],
                [found["convert"], str(ppm), str(tmp / "im-copy.ppm")],
            )
        )
    if "vips" in found:
        vimage = tmp / "in.v"
        if not vimage.exists():
            subprocess.run([found["vips"], "copy", str(ppm), str(vimage)], check=True)
        mat = tmp / f"k{kh}x{kw}.mat"
        rows = "\n".join(" ".join(f"{v:.9g}" for v in row) for row in k)
        mat.write_text(f"{kw} {kh} 1 0\n{rows}\n")
        commands.append(
            (
                "libvips conv",
                [found["vips"], "conv", str(vimage), str(tmp / "vips.v"), str(mat)],
                [found["vips"], "copy", str(vimage), str(tmp / "vips-copy.v")],
            )
        )
    return commands


# --- timing -----------------------------------------------------------------------------------


def timed(fn: Callable[[], object]) -> float:
    time.sleep(PAUSE)
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_command(argv: list[str]) -> Callable[[], object]:
    return lambda: subprocess.run(argv, check=True, capture_output=True)


@dataclass
class Row:
    case: Case
    convtool_ms: float
    peer: str
    peer_ms: float
    ratio: float
    detail: str


def measure(case: Case, repeat: int) -> list[Row]:
    tools: list[tuple[str, Callable[[], object]]] = [("convtool", case.convtool.run)]
    tools += [(p.name, p.run) for p in case.peers]
    for name, cmd, copy in case.commands:
        tools.append((name, run_command(cmd)))
        tools.append((name + " (copy only)", run_command(copy)))
    reference = case.convtool.run()  # warm-up, and the result the peers are checked against
    checks: dict[str, str] = {}
    for p in case.peers:
        result = p.run()  # warm-up
        checks[p.name] = (
            agreement(reference, result, case.tolerance, case.levels) if p.compare else "—"
        )
    for _, run in tools[1 + len(case.peers) :]:
        run()
    times: dict[str, list[float]] = {name: [] for name, _ in tools}
    for r in range(repeat):
        shift = r % len(tools)
        for name, run in tools[shift:] + tools[:shift]:
            times[name].append(timed(run))
    med = {name: statistics.median(ts) * 1e3 for name, ts in times.items()}
    ours = med["convtool"]
    load = f"; load {os.getloadavg()[0]:.2f}"
    rows = []
    for p in case.peers:
        detail = f"outputs {checks[p.name]}" + (f"; {p.note}" if p.note else "") + load
        rows.append(Row(case, ours, p.name, med[p.name], ours / med[p.name], detail))
    for name, _, _ in case.commands:
        net = med[name] - med[name + " (copy only)"]
        detail = f"{med[name]:.0f} ms whole command − {med[name + ' (copy only)']:.0f} ms copy"
        rows.append(Row(case, ours, name, net, ours / net if net > 0 else float("nan"), detail))
    return rows


def agreement(ours: object, theirs: object, tolerance: float, levels: float) -> str:
    """Whether two outputs agree away from the border (where definitions may differ): within
    ``tolerance`` × max|ours|, or within ``levels`` for integer outputs."""
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(theirs, dtype=np.float64)
    if a.shape != b.shape:
        return f"shape {b.shape} ≠ {a.shape}"
    m = 16
    diff = float(np.abs(a - b)[m:-m, m:-m].max())
    bound = levels if levels else tolerance * (float(np.abs(a).max()) or 1.0)
    return f"{'agree' if diff <= bound else 'DIFFER'} (max |Δ| {diff:.2g})"


# --- the machine -------------------------------------------------------------------------------


def cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all CPUs from /proc/stat; None where there is none."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    except OSError:
        return None
    values = [int(v) for v in fields]
    return values[3] + values[4], sum(values)


def wait_for_quiet(limit: float, idle: float = 0.8, seconds: int = 3) -> str:
    """Wait, at most ``limit`` seconds, until the CPUs were at least ``idle`` idle for
    ``seconds`` seconds in a row (other processes on a shared machine take cores from both
    tools unevenly); what happened, for the report."""
    before = cpu_times()
    if before is None or limit <= 0:
        return ""
    start = time.monotonic()
    quiet = 0
    while time.monotonic() - start < limit:
        time.sleep(1)
        now = cpu_times()
        assert now is not None
        share = (now[0] - before[0]) / max(1, now[1] - before[1])
        before = now
        quiet = quiet + 1 if share >= idle else 0
        if quiet >= seconds:
            return f"quiet after {time.monotonic() - start:.0f} s"
    return f"not quiet within {limit:.0f} s"


def find_commands() -> dict[str, str]:
    """Real ImageMagick and libvips executables (not a stand-in that only converts formats)."""
    found = {}
    for name in ("convert", "vips"):
        path = shutil.which(name)
        if not path:
            continue
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            version = subprocess.run(
                [path, "--version"], capture_output=True, text=True, timeout=10
            )
            text = version.stdout + version.stderr
            if ("ImageMagick" in text and "not installed" not in text) or text.startswith("vips"):
                found[name] = path
    return found


def machine(found: dict[str, str]) -> list[str]:
    import cv2
    import numba
    import PIL
    import scipy

    lines = [
        cpu_line(),
        f"- OS: {platform.platform()}; Python {platform.python_version()}",
        f"- convtool {convtool.__version__}, numba {numba.__version__} "
        f"({numba.get_num_threads()} threads, {numba.threading_layer()} layer), "
        f"numpy {np.__version__}",
        f"- peers: OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads), "
        f"scipy {scipy.__version__}, Pillow {PIL.__version__}",
    ]
    for name, path in found.items():
        out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
        first = out.splitlines()[0].strip() if out else name
        lines[-1] += ", " + first.removeprefix("Version: ").split(" https")[0]
    missing = {"convert": "ImageMagick", "vips": "libvips"}
    for name, label in missing.items():
        if name not in found:
            lines[-1] += f"; {label} not installed (skipped)"
    return lines


# --- the report --------------------------------------------------------------------------------


THREADS_TARGET = 1.7
"""The speed-up on 2 threads against 1 that the threads rows aim at."""


def threads_rows(x: np.ndarray, repeat: int, wait: float) -> list[str]:
    """1 against 2 threads on the 4K 5x5 and 15x15 cases, with OpenCV's own 1 → 2 speed-up
    measured in the same rounds: on a shared machine it shows how much of a second core there
    was to be had."""
    import cv2
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:  # type: ignore[attr-defined]
        return ["| threads 1 → 2 | only one core | | | | skipped |"]
    ks = kernels()
    rows = []
    for name in ("random 5x5", "random 15x15"):
        k = ks[name]
        k32 = k.astype(np.float32)

        def cv(n: int, k32: np.ndarray = k32) -> np.ndarray:
            cv2.setNumThreads(n)
            return cv2.filter2D(x, -1, k32, borderType=cv2.BORDER_REFLECT_101)

        runs: dict[str, Callable[[], object]] = {}
        for n in (1, 2):
            runs[f"convtool {n}"] = lambda n=n, k=k: convtool.correlate(
                x, k, border="mirror", threads=n
            )
            runs[f"cv2 {n}"] = lambda n=n: cv(n)
        previous = cv2.getNumThreads()
        wait_for_quiet(wait)
        try:
            med = interleaved(runs, repeat)
        finally:
            cv2.setNumThreads(previous)
        ours = med["convtool 1"] / med["convtool 2"]
        theirs = med["cv2 1"] / med["cv2 2"]
        met = "met" if ours >= THREADS_TARGET else "NOT met"
        load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
        rows.append(
            f"| threads 1 → 2, float32 {name} | {med['convtool 2']:.1f} (2 threads) | "
            f"convtool, 1 thread | {med['convtool 1']:.1f} | {ours:.2f}× faster | "
            f"≥ {THREADS_TARGET}× faster: {met} | cv2.filter2D in the same rounds: "
            f"{med['cv2 1']:.1f} → {med['cv2 2']:.1f} ms, {theirs:.2f}×; load {load} |"
        )
    return rows


def interleaved(runs: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median milliseconds of each run: a warm-up each, then ``repeat`` rounds in which every
    run goes once, in an order rotating from round to round."""
    for run in runs.values():
        run()
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeat):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(timed(runs[name]))
    return {name: statistics.median(ts) * 1e3 for name, ts in times.items()}


def report(rows: list[Row], extra: list[str], lines: list[str], args: argparse.Namespace) -> str:
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    out = [
        "# convtool benchmark results",
        "",
        f"Measured {now} by `python benchmarks/run.py {' '.join(sys.argv[1:])}`".rstrip() + ":",
        f"3840×2160 RGB (`{args.image.name}` upscaled, plus noise), border `mirror` (OpenCV's "
        f"default, `BORDER_REFLECT_101`), median of {args.repeat} interleaved runs after a "
        "warm-up. **Figures are ratios from one run** on a shared machine: absolute times "
        f"drift with its load (load average at the end: {load}; each row's notes give the "
        "one-minute load when its rounds ended). Before each case the script waited up to "
        f"{args.wait_quiet:g} s for idle CPUs.",
        "",
        *lines,
        "",
        "Ratio = convtool time / peer time: below 1 convtool is faster. Command-line peers: "
        "time net of the same command merely copying the uncompressed image.",
        "",
        "| case | convtool ms | peer | peer ms | ratio | target | notes |",
        "| --- | ---: | --- | ---: | ---: | --- | --- |",
    ]
    for row in rows:
        case = row.case
        target = ""
        if row.peer == case.target_peer:
            met = "met" if row.ratio <= case.target_ratio else "NOT met"
            target = f"≤ {case.target_ratio:g}: {met}"
        elif row.peer.startswith("scipy") and case.target.endswith("scipy.ndimage"):
            met = "met" if row.ratio <= 1 / 15 else "NOT met"
            target = f"≤ 1/15: {met}"
        out.append(
            f"| {case.name} | {row.convtool_ms:.1f} | {row.peer} | {row.peer_ms:.1f} | "
            f"{row.ratio:.3f} | {target} | {row.detail} |"
        )
    out += [
        "",
        "| case | convtool ms | against | ms | speed-up | target | notes |",
        "| --- | ---: | --- | ---: | ---: | --- | --- |",
        *extra,
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds per case (7)")
    parser.add_argument(
        "--quick", action="store_true", help="3 rounds, the 3x3 and 5x5 cases and threads only"
    )
    parser.add_argument(
        "--cases", nargs="*", default=[], help="run the cases whose name contains any of these"
    )
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--image", type=Path, default=ROOT / "sample_images" / "astronaut.png")
    parser.add_argument("--list", action="store_true", help="list the cases and peers, then stop")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        help="before each case, wait up to this many seconds for idle CPUs (60; 0: never)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat = min(args.repeat, 3)
        args.cases = args.cases or ["3x3", "5x5", "threads"]
    found = find_commands()
    print("\n".join(machine(found)), flush=True)
    x = test_image(args.image)
    with tempfile.TemporaryDirectory(prefix="convtool-bench-") as tmpdir:
        cases = build_cases(x, Path(tmpdir), found)
        selected = [c for c in cases if not args.cases or any(p in c.name for p in args.cases)]
        if args.list:
            for c in cases:
                peers = [p.name for p in c.peers] + [n for n, _, _ in c.commands]
                print(f"{c.name}: {', '.join(peers)}")
            return 0
        rows: list[Row] = []
        for case in selected:
            waited = wait_for_quiet(args.wait_quiet)
            print(f"{case.name} ... {waited}", flush=True)
            for row in measure(case, args.repeat):
                print(
                    f"    {row.peer:32s} {row.peer_ms:9.1f} ms   convtool {row.convtool_ms:9.1f} "
                    f"ms   ratio {row.ratio:.3f}   {row.detail}",
                    flush=True,
                )
                rows.append(row)
    extra = []
    if not args.cases or any(p in "threads" for p in args.cases):
        extra = threads_rows(x, args.repeat, args.wait_quiet)
        print("\n".join(extra), flush=True)
    text = report(rows, extra, machine(found), args)
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
