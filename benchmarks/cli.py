"""The ``convtool`` command as a user runs it: whole processes, start-up and file I/O included.

    python benchmarks/cli.py                        # every case, writes benchmarks/RESULTS-cli.md
    python benchmarks/cli.py --quick                # 3 rounds, 50-file batch, one cold run
    python benchmarks/cli.py --cases startup 4k --repeat 9 --output /tmp/cli.md
    python benchmarks/cli.py --convtool /tmp/v/bin/convtool
    python benchmarks/cli.py --list                 # the cases and their peers
    python benchmarks/cli.py --docs                 # docs/performance.md's table, from the results

Issue #5's command-line targets: start-up of ``convtool --help`` and ``convtool kernels``;
``convtool apply`` on a 512×512 PNG with a warm numba cache; a 3840×2160 PNG against ImageMagick
``convert`` (time ratio and peak RSS); a batch of 512×512 PNGs in one process against ImageMagick
``mogrify``; the first run with an empty numba cache (the first-contact issue's commands: 4K
PNG with ``sobel-x``, ``gaussian:2``, ``box:5``, ``motion``, a random 31×31 kernel file, a
16-bit TIFF with ``laplacian``, ``learn --size 5`` on a 2000² pair) against the same warm.
Issue #18's whole commands: a 4K Sobel JPEG → JPEG, TIFF → TIFF and PNG → PNG against libvips'
``vips conv`` at integer precision, each with the pieces its time is made of (``pieces.py``).
Every figure is one whole process, timed from the outside. The tools of a case run in the same
rounds, in an order that rotates from round to round, after one warm-up each; the table gives
medians and the ratio convtool / peer (for the first runs: the difference from the warm run).

Peak RSS comes from GNU ``time -f %M`` (or else VmHWM polled from /proc): the ``ru_maxrss``
that ``wait4`` reports for a direct child starts from this script's own high-water mark, since
the child's memory is the parent's until ``exec``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pieces
from machine import cpu_line
from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAMPLE = ROOT / "sample_images" / "astronaut.png"  # a 512×512 RGB photograph
WIDTH, HEIGHT = 3840, 2160
PAUSE = 0.05  # seconds between timed runs

# emboss: asymmetric (a flip would show) and summing to 1 (the output is a picture)
KERNEL = ((-2, -1, 0), (-1, 1, 1), (0, 1, 2))
CT_KERNEL = "; ".join(" ".join(str(v) for v in row) for row in KERNEL)
IM_KERNEL = "3x3: " + ",".join(str(v) for row in KERNEL for v in row)
# ImageMagick's default virtual pixels, `edge`, repeat the edge pixel: scipy's `nearest`
CT_OPTIONS = ["-k", CT_KERNEL, "--border", "nearest"]
IM_OPTIONS = ["-virtual-pixel", "edge", "-morphology", "Correlate", IM_KERNEL]
HEAVY = ("numpy", "numba", "llvmlite", "PIL", "scipy", "typer", "click", "rich")


# --- the inputs --------------------------------------------------------------------------------


def image_4k(source: Path, seed: int = 0) -> np.ndarray:
    """3840×2160 RGB uint8, as ``run.py``'s test image: ``source`` upscaled (bicubic) plus a
    little Gaussian noise (σ = 2/255)."""
    with Image.open(source) as im:
        big = im.convert("RGB").resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)
    x = np.asarray(big, dtype=np.float32) / 255
    x += np.random.default_rng(seed).normal(0, 2 / 255, x.shape).astype(np.float32)
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def crops(big: np.ndarray, count: int, size: int = 512, seed: int = 1) -> Iterator[np.ndarray]:
    """``count`` size×size crops of ``big`` at random (seeded) places."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        r = int(rng.integers(0, big.shape[0] - size + 1))
        c = int(rng.integers(0, big.shape[1] - size + 1))
        yield big[r : r + size, c : c + size]


# --- running a process --------------------------------------------------------------------------


@dataclass
class Run:
    wall: float  # seconds, from the outside
    cpu: float  # user + system seconds
    rss: float  # peak resident set, MB (MiB)


def gnu_time() -> str | None:
    path = shutil.which("time") or "/usr/bin/time"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
        if "GNU" in out.stdout + out.stderr:
            return path
    return None


TIME = gnu_time()


def run(argv: list[str], env: dict[str, str] | None = None) -> Run:
    """Run ``argv`` once (output discarded), raise if it fails."""
    with tempfile.TemporaryDirectory(prefix="convtool-cli-run-") as tmp:
        report = Path(tmp) / "time"
        err = Path(tmp) / "stderr"
        full = [TIME, "-f", "%U %S %M", "-o", str(report), *argv] if TIME else argv
        time.sleep(PAUSE)
        with err.open("wb") as stderr:
            t0 = time.perf_counter()
            child = subprocess.Popen(
                full, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=env
            )
            if TIME:
                code = child.wait()
            else:
                code, seconds, peak = watch(child)
            elapsed = time.perf_counter() - t0
        if code:
            tail = err.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{shlex.join(argv)} exited with {code}:\n{tail}")
        if TIME:
            user, system, kb = report.read_text().split()[-3:]
            return Run(elapsed, float(user) + float(system), int(kb) / 1024)
        return Run(elapsed, seconds, peak)


def watch(child: subprocess.Popen[bytes]) -> tuple[int, float, float]:
    """Without GNU time: the exit code, CPU seconds and VmHWM (MB) of ``child``, polled every
    10 ms from /proc until it exits (the wall time then comes up to 10 ms late)."""
    peak = 0.0
    status = Path(f"/proc/{child.pid}/status")
    while True:
        pid, code, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            child.returncode = os.waitstatus_to_exitcode(code)
            return child.returncode, usage.ru_utime + usage.ru_stime, peak
        with contextlib.suppress(OSError, ValueError):
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        time.sleep(0.01)


@dataclass
class Tool:
    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    before: Callable[[], object] | None = None  # untimed, before every run (e.g. empty a dir)

    def __call__(self) -> Run:
        if self.before:
            self.before()
        return run(self.argv, self.env)


def rounds(tools: list[Tool], repeat: int) -> dict[str, list[Run]]:
    """``repeat`` rounds, each tool once, in an order rotating from round to round."""
    runs: dict[str, list[Run]] = {t.name: [] for t in tools}
    for r in range(repeat):
        shift = r % len(tools)
        for tool in tools[shift:] + tools[:shift]:
            runs[tool.name].append(tool())
            print(f"    {tool.name:28s} {runs[tool.name][-1].wall:8.3f} s", flush=True)
    return runs


def wall(runs: list[Run]) -> float:
    return statistics.median(r.wall for r in runs)


def cpu(runs: list[Run]) -> float:
    return statistics.median(r.cpu for r in runs)


def rss(runs: list[Run]) -> float:
    return max(r.rss for r in runs)


# --- the machine and the executables -------------------------------------------------------------


def find_imagemagick() -> dict[str, str]:
    """ImageMagick's own ``convert`` and ``mogrify`` executables, ``/usr/bin`` first. A script
    in their place (such as a stand-in ``convert`` on PATH that passes calls on) is skipped:
    its own start-up would be counted against ImageMagick."""
    found = {}
    for name in ("convert", "mogrify"):
        for path in dict.fromkeys(p for p in (f"/usr/bin/{name}", shutil.which(name)) if p):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                if Path(path).resolve().read_bytes()[:4] != b"\x7fELF":
                    continue
                out = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=10)
                if out.stdout.startswith("Version: ImageMagick"):
                    found[name] = path
                    break
    return found


def interpreter(convtool: Path) -> str:
    """The Python that runs the ``convtool`` script (its shebang), or this one."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        first = convtool.read_bytes()[:256].split(b"\n", 1)[0].decode()
        if first.startswith("#!") and "python" in first:
            return first[2:].strip().split()[0]
    return sys.executable


def versions(python: str) -> str:
    code = (
        "import platform, importlib.metadata as m\n"
        "v = lambda p: m.version(p) if p in {d.metadata['Name'].lower() for d in "
        "m.distributions()} else 'absent'\n"
        "print(f\"Python {platform.python_version()}; convtool {v('convtool')}, numba {v('numba')}"
        ", numpy {v('numpy')}, Pillow {v('pillow')}, typer {v('typer')}\")"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True)
    return out.stdout.strip() or f"(versions unknown: {out.stderr.strip()[-200:]})"


def source(python: str) -> str:
    """Where that Python imports convtool from; for this checkout, its commit and whether
    ``src/`` holds uncommitted changes (an editable install runs them)."""
    code = "import importlib.util as u; print(u.find_spec('convtool').origin)"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True)
    origin = Path(out.stdout.strip() or "?").parent
    text = f"`{origin}`"
    if origin.is_relative_to(ROOT):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            git = ["git", "-C", str(ROOT)]
            head = subprocess.run([*git, "log", "-1", "--format=%h %cI"], capture_output=True)
            dirty = subprocess.run(
                [*git, "status", "--porcelain", "--", "src"], capture_output=True
            )
            changed = len(dirty.stdout.decode().splitlines())
            text += f", commit {head.stdout.decode().strip()}"
            text += f" + uncommitted changes to {changed} files in src/" if changed else ", clean"
    return text


def machine(convtool: Path, python: str, found: dict[str, str]) -> list[str]:
    lines = [
        f"{cpu_line()}; {platform.platform()}",
        f"- convtool: `{convtool}` (Python `{python}`): {versions(python)}",
        f"- convtool's source: {source(python)}",
    ]
    im = []
    for name in ("convert", "mogrify"):
        if name in found:
            out = subprocess.run([found[name], "-version"], capture_output=True, text=True)
            first = out.stdout.splitlines()[0].removeprefix("Version: ").split(" https")[0]
            im.append(f"`{found[name]}` ({first})")
        else:
            im.append(f"`{name}`: no ImageMagick found (its rows skipped)")
    vips = found.get("vips")
    im.append(f"`{vips}` ({pieces.vips_version(vips)})" if vips else "libvips: not found")
    lines.append("- peers: " + ", ".join(im))
    lines.append(
        "- peak RSS: "
        + (f"GNU time `{TIME} -f %M`" if TIME else "VmHWM polled from /proc every 10 ms")
    )
    return lines


# --- what the import of the command costs --------------------------------------------------------


def imports(python: str, convtool: Path, args: list[str]) -> str:
    """Which heavy packages ``convtool ARGS`` imports, and its three slowest top-level imports
    (``python -X importtime`` running the console script itself)."""
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: print('MODULES', *[m for m in {HEAVY!r} if m in sys.modules], "
        "file=sys.stderr))\n"
        f"sys.argv = [{str(convtool)!r}, *{args!r}]\n"
        f"path = {str(convtool)!r}\n"
        "exec(compile(open(path).read(), path, 'exec'), {'__name__': '__main__'})\n"
    )
    out = subprocess.run(
        [python, "-X", "importtime", "-c", code], capture_output=True, text=True, timeout=120
    )
    loaded: list[str] = []
    top: list[tuple[int, str]] = []
    for line in out.stderr.splitlines():
        if line.startswith("MODULES"):
            loaded = line.split()[1:]
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if m:  # no indent after the bar: imported at the top level
            top.append((int(m.group(1)), m.group(2)))
    top.sort(reverse=True)
    slow = ", ".join(f"{name} {us / 1e3:.0f} ms" for us, name in top[:3])
    heavy = ", ".join(f"{p} {'yes' if p in loaded else 'no'}" for p in ("numba", "numpy", "PIL"))
    return f"imports {heavy}; slowest top-level imports: {slow}"


# --- comparing outputs --------------------------------------------------------------------------


def agreement(ours: Path, theirs: Path) -> str:
    """Whether two images hold the same values, on the border (1 pixel) and inside."""
    with Image.open(ours) as a_im, Image.open(theirs) as b_im:
        if a_im.mode != b_im.mode or a_im.size != b_im.size:
            return f"{a_im.mode} {a_im.size} against {b_im.mode} {b_im.size}"
        a = np.asarray(a_im).astype(np.int32)
        b = np.asarray(b_im).astype(np.int32)
    diff = np.abs(a - b)
    inside = int(diff[1:-1, 1:-1].max())
    whole = int(diff.max())
    if whole == 0:
        return "outputs identical"
    return f"outputs differ: max |Δ| {inside} inside, {whole} with the border"


def size_mb(path: Path) -> str:
    return f"{path.stat().st_size / 2**20:.1f} MB"


# --- the cases ----------------------------------------------------------------------------------


@dataclass
class Row:
    case: str
    convtool: str
    peer: str
    peer_value: str
    ratio: str
    target: str
    notes: str


def failed(case: str, error: RuntimeError) -> Row:
    """The row of a case whose command failed: the command and the last line it wrote."""
    lines = str(error).splitlines()
    why = f"{lines[0][:160]} … {lines[-1][:300]}"
    return Row(case, "FAILED", "", "", "", "NOT met", why.replace("|", "\\|"))


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


@dataclass
class Bench:
    convtool: Path
    python: str
    found: dict[str, str]
    tmp: Path
    repeat: int
    batch: int
    batch_rounds: int
    cold_rounds: int
    cold_threads: bool = True
    cache: Path = field(init=False)
    commands: list[str] = field(default_factory=list)
    breakdowns: list[str] = field(default_factory=list)
    _big: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.cache = self.tmp / "numba-cache"

    # inputs, made once

    def env(self, cache: Path) -> dict[str, str]:
        """This run's own numba cache; the warm-up runs fill it in the foreground (the
        command's default would run numpy twins and compile after them), and Python's
        bytecode cache, as an installed convtool has one."""
        env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "CONVTOOL_COMPILE": "now"}
        # an installed package has its bytecode: let the warm-up write it (outside the tree)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(self.tmp / "pycache")
        return env

    def small(self) -> Path:
        path = self.tmp / "in512.png"
        if not path.exists():
            with Image.open(SAMPLE) as im:
                im.convert("RGB").save(path)
        return path

    def big(self) -> np.ndarray:
        if self._big is None:
            self._big = image_4k(SAMPLE)
        return self._big

    def big_png(self) -> Path:
        path = self.tmp / "in4k.png"
        if not path.exists():
            Image.fromarray(self.big()).save(path)
        return path

    def big_jpeg(self) -> Path:
        path = self.tmp / "in4k.jpg"
        if not path.exists():
            Image.fromarray(self.big()).save(path, quality=90)
        return path

    def big_tiff8(self) -> Path:
        path = self.tmp / "in4k.tif"
        if not path.exists():
            Image.fromarray(self.big()).save(path)  # uncompressed
        return path

    def batch_dir(self) -> Path:
        folder = self.tmp / f"batch{self.batch}"
        if not folder.exists():
            folder.mkdir()
            for i, crop in enumerate(crops(self.big(), self.batch)):
                Image.fromarray(crop).save(folder / f"{i:04d}.png")
        return folder

    def apply(self, src: Path, out: Path, extra: tuple[str, ...] | list[str] = ()) -> Tool:
        argv = [str(self.convtool), "apply", str(src), *CT_OPTIONS, *extra, "-o", str(out)]
        return Tool("convtool apply", argv, self.env(self.cache))

    def convert(self, src: Path, out: Path) -> Tool:
        return Tool("convert", [self.found["convert"], str(src), *IM_OPTIONS, str(out)])

    def show(self, *tools: Tool) -> None:
        for tool in tools:
            self.commands.append(shlex.join(tool.argv))

    def cache_files(self, cache: Path | None = None) -> dict[str, float]:
        root = cache or self.cache
        return {str(p): p.stat().st_mtime for p in root.rglob("*") if p.is_file()}

    def measure(
        self, tools: list[Tool], repeat: int, warm: list[Tool] | None = None
    ) -> tuple[dict[str, list[Run]], str]:
        """One warm-up run of each tool (or of those in ``warm``), then the rounds; and a note
        if numba's cache changed during the rounds (someone edited the source: the times
        include a compilation). The warm-up fills this run's own numba cache, isolated from
        other processes' caches."""
        for tool in tools if warm is None else warm:
            tool()
        before = self.cache_files()
        runs = rounds(tools, repeat)
        changed = self.cache_files() != before
        return runs, "; NUMBA'S CACHE CHANGED DURING THE ROUNDS (a compilation)" if changed else ""

    # 1. start-up

    def startup(self) -> list[Row]:
        env = self.env(self.cache)
        tools = [
            Tool("convtool --help", [str(self.convtool), "--help"], env),
            Tool("convtool kernels", [str(self.convtool), "kernels"], env),
            Tool("python -c pass", [self.python, "-c", "pass"]),
        ]
        self.show(*tools)
        runs, _ = self.measure(tools, self.repeat)
        floor = wall(runs["python -c pass"])
        rows = []
        for tool, args in zip(tools[:2], (["--help"], ["kernels"]), strict=True):
            t = wall(runs[tool.name])
            notes = f"CPU {cpu(runs[tool.name]):.2f} s; {imports(self.python, self.convtool, args)}"
            rows.append(
                Row(
                    f"start-up: `{tool.name}`",
                    f"{t:.3f} s",
                    "`python -c pass` (the interpreter's own start-up)",
                    f"{floor:.3f} s",
                    f"{t / floor:.1f}",
                    f"≤ 0.25 s: {met(t <= 0.25)}",
                    notes,
                )
            )
        return rows

    # 2. one 512×512 PNG, warm numba cache

    def apply512(self) -> list[Row]:
        src = self.small()
        ours, theirs = self.apply(src, self.tmp / "ct512.png"), None
        tools = [ours]
        if "convert" in self.found:
            theirs = self.convert(src, self.tmp / "im512.png")
            tools.append(theirs)
        self.show(*tools)
        runs, changed = self.measure(tools, self.repeat)
        t = wall(runs[ours.name])
        notes = f"peak RSS {rss(runs[ours.name]):.0f} MB, CPU {cpu(runs[ours.name]):.2f} s"
        peer, peer_t, ratio = "ImageMagick convert: not found", "", ""
        if theirs:
            p = wall(runs[theirs.name])
            peer, peer_t, ratio = "ImageMagick `convert`", f"{p:.3f} s", f"{t / p:.1f}"
            notes += f"; {agreement(self.tmp / 'ct512.png', self.tmp / 'im512.png')}"
        notes += changed
        return [
            Row(
                "`apply` 512×512 PNG, 3×3, warm cache",
                f"{t:.3f} s",
                peer,
                peer_t,
                ratio,
                f"≤ 0.45 s: {met(t <= 0.45)}",
                notes,
            )
        ]

    # 3. 3840×2160 PNG → PNG

    def big4k(self) -> list[Row]:
        if "convert" not in self.found:
            return [Row("4K PNG → PNG, 3×3", "", "ImageMagick convert: not found", "", "", "", "")]
        src = self.big_png()
        out_ct, out_im = self.tmp / "ct4k.png", self.tmp / "im4k.png"
        ours, theirs = self.apply(src, out_ct), self.convert(src, out_im)
        self.show(ours, theirs)
        runs, changed = self.measure([ours, theirs], self.repeat)
        t, p = wall(runs[ours.name]), wall(runs[theirs.name])
        m_ct, m_im = rss(runs[ours.name]), rss(runs[theirs.name])
        sizes = f"output {size_mb(out_ct)} (convtool) / {size_mb(out_im)} (convert)"
        return [
            Row(
                "4K (3840×2160 RGB) PNG → PNG, 3×3: time",
                f"{t:.2f} s",
                "ImageMagick `convert`",
                f"{p:.2f} s",
                f"{t / p:.2f}",
                f"≤ 0.3: {met(t / p <= 0.3)}",
                f"CPU {cpu(runs[ours.name]):.2f} s / {cpu(runs[theirs.name]):.2f} s; "
                f"input {size_mb(src)}, {sizes}; {agreement(out_ct, out_im)}" + changed,
            ),
            Row(
                "4K PNG → PNG, 3×3: peak RSS",
                f"{m_ct:.0f} MB",
                "ImageMagick `convert`",
                f"{m_im:.0f} MB",
                f"{m_ct / m_im:.1f}",
                f"≤ 250 MB: {met(m_ct <= 250)}",
                f"largest of the {self.repeat} runs; the decoded image is "
                f"{WIDTH * HEIGHT * 3 / 2**20:.0f} MB as uint8, "
                f"{WIDTH * HEIGHT * 3 * 4 / 2**20:.0f} MB as float32",
            ),
        ]

    # 4. a batch of 512×512 PNGs in one process

    def batch_case(self) -> list[Row]:
        if "mogrify" not in self.found:
            return [Row("batch", "", "ImageMagick mogrify: not found", "", "", "", "")]
        folder = self.batch_dir()
        files = sorted(str(p) for p in folder.glob("*.png"))
        out_ct, out_im = self.tmp / "batch-ct", self.tmp / "batch-im"

        def empty(d: Path) -> Callable[[], None]:
            def clear() -> None:
                shutil.rmtree(d, ignore_errors=True)
                d.mkdir()

            return clear

        ours = Tool(
            "convtool apply --out-dir",
            [str(self.convtool), "apply", *files, *CT_OPTIONS, "--out-dir", str(out_ct)],
            self.env(self.cache),
            empty(out_ct),
        )
        theirs = Tool(
            "mogrify -path",
            [self.found["mogrify"], "-path", str(out_im), *IM_OPTIONS, *files],
            before=empty(out_im),
        )
        self.commands += [
            shlex.join(
                [
                    *t.argv[: t.argv.index(files[0])],
                    f"{folder}/*.png",
                    *t.argv[t.argv.index(files[-1]) + 1 :],
                ]
            )
            for t in (ours, theirs)
        ]
        runs, changed = self.measure([ours, theirs], self.batch_rounds, warm=[ours])
        t, p = wall(runs[ours.name]), wall(runs[theirs.name])
        names = [Path(files[i]).name for i in (0, len(files) // 2, -1)]
        checks = {agreement(out_ct / n, out_im / n) for n in names}
        return [
            Row(
                f"batch: {self.batch} PNGs of 512×512, one process",
                f"{t:.2f} s ({self.batch / t:.0f} files/s)",
                "ImageMagick `mogrify`",
                f"{p:.2f} s ({self.batch / p:.0f} files/s)",
                f"{t / p:.2f}",
                f"≤ 1.0: {met(t <= p)}",
                f"peak RSS {rss(runs[ours.name]):.0f} MB / {rss(runs[theirs.name]):.0f} MB, "
                f"CPU {cpu(runs[ours.name]):.1f} s / {cpu(runs[theirs.name]):.1f} s; "
                f"{plural(self.batch_rounds, 'round')} after a warm-up of convtool only; "
                f"files {', '.join(names)}: " + "; ".join(sorted(checks)) + changed,
            )
        ]

    # 5. the first run, with an empty numba cache

    def big_tiff16(self) -> Path:
        path = self.tmp / "in4k16.tif"
        if not path.exists():
            import tifffile

            tifffile.imwrite(path, self.big().astype(np.uint16) * 257)
        return path

    def kernel31(self) -> Path:
        path = self.tmp / "random31.txt"
        if not path.exists():
            np.savetxt(path, np.random.default_rng(31).standard_normal((31, 31)) / 31)
        return path

    def learn_pair(self) -> tuple[Path, Path]:
        """A 2000×2000 RGB crop and its correlation with a positive 5×5 kernel (numpy)."""
        src, dst = self.tmp / "learn-in.png", self.tmp / "learn-out.png"
        if not dst.exists():
            x = self.big()[:2000, :2000].astype(np.float64)
            k = np.random.default_rng(5).random((5, 5))
            k /= k.sum()
            p = np.pad(x, ((2, 2), (2, 2), (0, 0)), mode="symmetric")
            y = sum(k[i, j] * p[i : i + 2000, j : j + 2000] for i in range(5) for j in range(5))
            Image.fromarray(x.astype(np.uint8)).save(src)
            Image.fromarray(np.clip(np.rint(y), 0, 255).astype(np.uint8)).save(dst)
        return src, dst

    # 6. learn: the FFT normal equations (issue 18's learn rows)

    def learn_blur41(self) -> tuple[Path, Path]:
        """The 512×512 RGB sample and its 41×41 Gaussian blur (σ = 6), made by convtool."""
        src, dst = self.small(), self.tmp / "learn41-out.png"
        if not dst.exists():
            subprocess.run(
                [str(self.convtool), "apply", str(src), "-k", "gaussian:sigma=6,size=41",
                 "-o", str(dst)],
                check=True, env=self.env(self.cache),
            )  # fmt: skip
        return src, dst

    def learn_case(self) -> list[Row]:
        """``learn --size 41`` on a 512² pair, ``--size 64`` and ``--channels mix --size 5`` on
        a 2000² RGB pair, in the same interleaved rounds (targets of issues 18 and 17: ≤ 2 s,
        ≤ 30 s, ≤ 3 s; the mix fit also under 200 MB beyond the two images)."""
        cases = [
            ("`learn --size 41`, 512² RGB pair (Gaussian σ = 6)", self.learn_blur41(), "41", 2.0),
            ("`learn --size 64`, 2000² RGB pair", self.learn_pair(), "64", 30.0),
            ("`learn --channels mix --size 5`, 2000² RGB pair", self.learn_pair(), "5", 3.0),
        ]
        tools = []
        for label, pair, size, _ in cases:
            out = self.tmp / f"learn{size}.txt"
            mode = ["--channels", "mix"] if "mix" in label else []
            argv = [str(self.convtool), "learn", *map(str, pair), "--size", size, *mode]
            tools.append(Tool(label, [*argv, "-o", str(out)], self.env(self.cache)))
        self.show(*tools)
        runs, changed = self.measure(tools, self.repeat)
        rows = []
        for (label, _, _, target), tool in zip(cases, tools, strict=True):
            t = wall(runs[tool.name])
            rows.append(
                Row(
                    label,
                    f"{t:.2f} s",
                    "the issue's target",
                    f"{target:.0f} s",
                    f"{t / target:.2f}",
                    f"≤ {target:.0f} s: {met(t <= target)}",
                    f"peak RSS {rss(runs[tool.name]):.0f} MB, CPU {cpu(runs[tool.name]):.1f} s; "
                    f"{plural(self.repeat, 'round')}, interleaved with the other learn cases"
                    + changed,
                )
            )
        return rows

    def cold(self) -> list[Row]:
        """The first run of each command of the first-contact issue with an empty numba cache,
        against the same command with a warm one (the targets: ≤ 3 s, and ≤ 1 s more)."""
        big = self.big_png
        cases: list[tuple[str, Callable[[], list[str]], str]] = [
            ("`-k sobel-x`, 4K PNG", lambda: ["apply", str(big()), "-k", "sobel-x"], ".png"),
            ("`-k gaussian:2`, 4K PNG", lambda: ["apply", str(big()), "-k", "gaussian:2"], ".png"),
            ("`-k box:5`, 4K PNG", lambda: ["apply", str(big()), "-k", "box:5"], ".png"),
            (
                "`-k motion:length=15,angle=30`, 4K PNG",
                lambda: ["apply", str(big()), "-k", "motion:length=15,angle=30"],
                ".png",
            ),
            (
                "`-k @random31.txt` (31×31), 4K PNG",
                lambda: ["apply", str(big()), "-k", f"@{self.kernel31()}", "--map", "abs"],
                ".png",
            ),
            (
                "`-k laplacian`, 4K 16-bit TIFF",
                lambda: ["apply", str(self.big_tiff16()), "-k", "laplacian"],
                ".tif",
            ),
            (
                "`learn --size 5`, 2000² RGB pair",
                lambda: ["learn", *map(str, self.learn_pair()), "--size", "5"],
                ".txt",
            ),
        ]
        if not self.cold_threads:
            cases = cases[:1]
        rows = []
        for label, argv, suffix in cases:
            try:
                rows.append(self.cold_row(label, argv(), suffix))
            except RuntimeError as e:
                rows.append(failed(f"first {label}, empty numba cache", e))
        return rows

    def cold_row(self, label: str, args: list[str], suffix: str) -> Row:
        caches: list[Path] = []
        out_cold, out_warm = self.tmp / f"cold{suffix}", self.tmp / f"warm{suffix}"

        def fresh() -> None:
            wait_for_background_compiles()
            caches.append(Path(tempfile.mkdtemp(prefix="numba-cold-", dir=self.tmp)))
            ours.env = {**self.env(caches[-1]), "CONVTOOL_COMPILE": "background"}

        ours = Tool(f"{label}, empty cache", [str(self.convtool), *args, "-o", str(out_cold)])
        ours.before = fresh
        warm = Tool(
            f"{label}, warm cache",
            [str(self.convtool), *args, "-o", str(out_warm)],
            self.env(self.cache),
            wait_for_background_compiles,
        )
        self.commands.append("NUMBA_CACHE_DIR=$(mktemp -d) " + shlex.join(ours.argv))
        runs, changed = self.measure([ours, warm], self.cold_rounds, warm=[warm])
        wait_for_background_compiles()
        t, w = wall(runs[ours.name]), wall(runs[warm.name])
        same = out_cold.read_bytes() == out_warm.read_bytes()
        written = [len(self.cache_files(c)) for c in caches]
        return Row(
            f"first {label}, empty numba cache",
            f"{t:.2f} s",
            "the same, warm cache",
            f"{w:.2f} s",
            f"{t - w:+.2f} s",
            f"≤ 3 s and ≤ warm + 1 s: {met(t <= 3 and t <= w + 1)}",
            f"CPU {cpu(runs[ours.name]):.1f} s, peak RSS {rss(runs[ours.name]):.0f} MB; "
            f"{plural(self.cold_rounds, 'round')}, each with a new empty `NUMBA_CACHE_DIR`; "
            f"outputs {'identical' if same else 'DIFFERENT'} to the warm run's; cache files "
            f"after the background compile: {', '.join(map(str, written))}{changed}",
        )


def wait_for_background_compiles(limit: float = 300.0) -> None:
    """Until no ``python -m convtool.compiled`` (a first run's background compile) is running,
    so that one round's compile does not share the cores with the next round."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        busy = False
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                if b"\0-m\0convtool.compiled\0" in (proc / "cmdline").read_bytes():
                    busy = True
                    break
        if not busy:
            return
        time.sleep(0.2)


def vips_case(bench: Bench) -> list[Row]:
    """Issue #18's whole commands: a 4K Sobel JPEG → JPEG, TIFF → TIFF, PNG → PNG against
    ``vips conv`` (integer precision), with the pieces of each beside libvips'."""
    vips = bench.found.get("vips")
    if vips is None:
        return [Row("4K Sobel against libvips", "", "libvips `vips`: not found", "", "", "", "")]
    matrix = pieces.write_matrix(bench.tmp / "sobel-x.mat", pieces.SOBEL_X)
    runs = min(bench.repeat, 5)
    env = bench.env(bench.cache)
    interpreter = wall(rounds([Tool("python", [bench.python, "-c", "pass"])], runs)["python"])
    start = wall(rounds([Tool("vips", [vips, "--version"])], runs)["vips"])
    rows = []
    for label, src, suffix, target in (
        ("JPEG → JPEG", bench.big_jpeg(), ".jpg", 2.0),
        ("TIFF → TIFF", bench.big_tiff8(), ".tif", 2.0),
        ("PNG → PNG", bench.big_png(), ".png", 0.6),
    ):
        out_ct, out_v = bench.tmp / f"ct-sobel{suffix}", bench.tmp / f"vips-sobel{suffix}"
        args = ["apply", str(src), "-k", "sobel-x", "--border", "nearest", "-o", str(out_ct)]
        ours = Tool("convtool apply -k sobel-x", [str(bench.convtool), *args], env)
        theirs = Tool("vips conv", [vips, "conv", str(src), str(out_v), str(matrix), "--precision",
                                    "integer"])  # fmt: skip
        copy = Tool("vips copy", [vips, "copy", str(src), str(bench.tmp / f"vips-copy{suffix}")])
        bench.show(ours, theirs, copy)
        runs_of, changed = bench.measure([ours, theirs, copy], bench.repeat)
        t, p = wall(runs_of[ours.name]), wall(runs_of[theirs.name])
        mine = pieces.command_pieces(bench.python, args, env, runs)
        numba = pieces.numba_pieces(bench.python, src, env, runs)
        theirs_pieces = {"start": start, "copy": wall(runs_of[copy.name]), "conv": p}
        bench.breakdowns += pieces.table(
            f"4K {label}, Sobel", interpreter, mine, numba, t, theirs_pieces
        )
        loaded = "loaded numba" if mine["numba"] else "did not load numba"
        rows.append(
            Row(
                f"4K (3840×2160 RGB) {label}, `-k sobel-x`: time",
                f"{t:.2f} s",
                "libvips `vips conv --precision integer`",
                f"{p:.2f} s",
                f"{t / p:.2f}",
                f"≤ {target}: {met(t / p <= target)}",
                f"CPU {cpu(runs_of[ours.name]):.2f} s / {cpu(runs_of[theirs.name]):.2f} s; "
                f"input {size_mb(src)}, output {size_mb(out_ct)} (convtool) / "
                f"{size_mb(out_v)} (vips); {agreement(out_ct, out_v)}; the command {loaded}; "
                "pieces below" + changed,
            )
        )
    return rows


CASES: dict[str, Callable[[Bench], list[Row]]] = {
    "startup": Bench.startup,
    "apply-512": Bench.apply512,
    "4k": Bench.big4k,
    "batch": Bench.batch_case,
    "cold": Bench.cold,
    "learn": Bench.learn_case,
    "vips": vips_case,
}


# --- the report ---------------------------------------------------------------------------------


def report(rows: list[Row], bench: Bench, lines: list[str], seconds: float) -> str:
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    out = [
        "# convtool on the command line: whole-process results",
        "",
        f"Measured {now} by `python benchmarks/cli.py {shlex.join(sys.argv[1:])}`".rstrip()
        + f" in {seconds / 60:.1f} min. Each figure is one whole process timed from outside "
        f"(start-up, decoding and encoding included); medians of {bench.repeat} interleaved "
        f"rounds after a warm-up (batch: {plural(bench.batch_rounds, 'round')}, cold cache: "
        f"{bench.cold_rounds}). Ratio = convtool / peer: below 1 convtool is faster. "
        f"Load average at the end: {load}.",
        "",
        *lines,
        "",
        f"Kernel: emboss `{CT_KERNEL}` (asymmetric, sums to 1), correlated (no flip) by both "
        "tools; border `--border nearest` for convtool, ImageMagick's default `-virtual-pixel "
        "edge` (the edge pixel repeated; for a 3×3 kernel convtool's default `reflect` gives the "
        "same values). The warm runs use this run's own `NUMBA_CACHE_DIR`, filled by the warm-up "
        "runs. Outputs are 8-bit RGB PNGs from both; convtool writes zlib level 4 "
        "(`--compress-level`), ImageMagick its default (quality 75: level 7, adaptive filters).",
        "",
        "Commands (`$T` a temporary directory):",
        "",
        "```sh",
        *(c.replace(str(bench.tmp), "$T") for c in bench.commands),
        "```",
        "",
        "| case | convtool | peer | peer's figure | ratio | target | notes |",
        "| --- | ---: | --- | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        line = f"| {r.case} | {r.convtool} | {r.peer} | {r.peer_value} | {r.ratio} | {r.target} | "
        out.append(f"{line}{r.notes} |".replace(str(bench.tmp), "$T"))
    if bench.breakdowns:
        out += ["", *BREAKDOWN_INTRODUCTION, "", *bench.breakdowns]
    return "\n".join([*out, ""])


BREAKDOWN_INTRODUCTION = [
    "## The whole commands against libvips, piece by piece",
    "",
    "Where each 4K Sobel command's time goes (medians of separate runs, so the sum of the "
    "pieces need not be the whole command's median). convtool's pieces are timed inside a "
    "process running the command: its pipeline's read, filter, encode and write, and the rest "
    "of the process after the interpreter's start-up (imports, options, planning). The last "
    "three rows say what numba would add or save: importing it, loading the filter's cached "
    "machine code, and the filter once loaded; a command whose work is small does not load it "
    "(`compiled.TWIN_BUDGET`). libvips' pieces are whole processes: `vips --version`, `vips "
    "copy` (decode and encode, no filter) and `vips conv`. The floor of a Python command is "
    "the interpreter, the imports, decoding and encoding; the filter is what is left to win.",
]


DOCS = ROOT / "docs" / "performance.md"
BEGIN = "<!-- begin: written by benchmarks/cli.py from benchmarks/RESULTS-cli.md -->"
END = "<!-- end: written by benchmarks/cli.py -->"


def docs_block(results: str) -> list[str]:
    """The performance page's table of whole commands, made from a RESULTS-cli.md: its date,
    load and machine, and each row without its notes."""
    lines = results.splitlines()
    measured = next(line for line in lines if line.startswith("Measured "))
    when = measured.removeprefix("Measured ").split(" by ", 1)[0]
    load = measured.rsplit("Load average at the end: ", 1)[-1].rstrip(".")
    cpu_model = next(line for line in lines if line.startswith("- CPU: "))
    header = lines.index("| case | convtool | peer | peer's figure | ratio | target | notes |")
    out = [
        BEGIN,
        "",
        f"Measured {when}, load average {load} at the end (a shared machine: absolute times "
        "move with the load, ratios of tools timed in the same rounds much less), on "
        f"{cpu_model.removeprefix('- CPU: ')}. Whole processes timed from outside, medians of "
        "interleaved rounds; ratio = convtool / peer (below 1: convtool is faster). The "
        "notes, the commands, and the pieces of the commands against libvips are in "
        "`benchmarks/RESULTS-cli.md`.",
        "",
        "| case | convtool | peer | peer's figure | ratio | target |",
        "| --- | ---: | --- | ---: | ---: | --- |",
    ]
    for line in lines[header + 2 :]:
        if not line.startswith("| "):
            break
        cells = line.split(" | ")
        out.append(" | ".join(cells[:6]) + " |")
    return [*out, "", END]


def update_docs(results: Path, docs: Path = DOCS) -> None:
    """Write :func:`docs_block` of ``results`` between the page's markers."""
    text = docs.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    docs.write_text(head + "\n".join(docs_block(results.read_text())) + tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="rounds per case (7)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 rounds, a batch of 50 files once, one cold run (without --threads)",
    )
    parser.add_argument(
        "--cases",
        nargs="*",
        default=[],
        help=f"the cases whose name contains any of these: {', '.join(CASES)}",
    )
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS-cli.md")
    parser.add_argument(
        "--convtool",
        type=Path,
        default=Path(sys.executable).parent / "convtool",
        help="the executable to time (default: the convtool next to this Python)",
    )
    parser.add_argument("--list", action="store_true", help="list the cases and peers, then stop")
    parser.add_argument(
        "--docs",
        action="store_true",
        help="rewrite docs/performance.md's table from benchmarks/RESULTS-cli.md, then stop "
        "(a run writing benchmarks/RESULTS-cli.md rewrites it too)",
    )
    args = parser.parse_args(argv)
    default_output = HERE / "RESULTS-cli.md"
    if args.docs:
        update_docs(default_output)
        print(f"wrote {DOCS}")
        return 0
    if not args.convtool.exists():
        parser.error(f"no convtool at {args.convtool}; give one with --convtool PATH")
    convtool = args.convtool.absolute()
    found = find_imagemagick()
    vips = pieces.find_vips()
    if vips:
        found["vips"] = vips
    python = interpreter(convtool)
    lines = machine(convtool, python, found)
    print("\n".join(lines), flush=True)
    selected = [n for n in CASES if not args.cases or any(p in n for p in args.cases)]
    if args.list:
        peers = {
            "startup": "python -c pass",
            "apply-512": "convert",
            "4k": "convert",
            "batch": "mogrify",
            "cold": "convtool with a warm cache",
            "learn": "its time target (no peer)",
            "vips": "vips conv",
        }
        for name in CASES:
            print(f"{name}: {peers[name]}")
        return 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="convtool-cli-") as tmpdir:
        bench = Bench(
            convtool,
            python,
            found,
            Path(tmpdir),
            repeat=min(args.repeat, 3) if args.quick else args.repeat,
            batch=50 if args.quick else 200,
            batch_rounds=1 if args.quick else min(args.repeat, 3),
            cold_rounds=1 if args.quick else min(args.repeat, 2),
            cold_threads=not args.quick,
        )
        rows: list[Row] = []
        for name in selected:
            print(f"{name} ...", flush=True)
            try:
                case_rows = CASES[name](bench)
            except RuntimeError as e:  # a command failed: say so, go on with the other cases
                case_rows = [failed(name, e)]
            for row in case_rows:
                print(
                    f"  {row.case}: {row.convtool} | {row.peer} {row.peer_value} | "
                    f"ratio {row.ratio} | {row.target} | {row.notes}",
                    flush=True,
                )
                rows.append(row)
        text = report(rows, bench, lines, time.perf_counter() - start)
    args.output.write_text(text)
    print(f"wrote {args.output}")
    if args.output.resolve() == default_output.resolve():
        update_docs(default_output)
        print(f"wrote {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
