"""Where numba's cache goes, and the note while numba compiles.

A regression: installed where its user cannot write (a system-wide install run by a service
account such as nobody, HOME=/nonexistent), every run that needed the numba core failed with
``unexpected RuntimeError: cannot cache function 'map_index': no locator available``. The runs
here are real processes of an unprivileged user on a read-only copy of the package.
"""

from __future__ import annotations

import ast
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from convtool import compiled

from conftest import stderr_on_a_terminal, stop_background_compilers

SRC = Path(compiled.__file__).resolve().parent
CONVTOOL = [sys.executable, "-m", "convtool"]
NOBODY = 65534
TIMEOUT = 300
COMPILING = "convtool: note: compiling the filter core"
SITE_PACKAGES = list(dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib")))
"""This interpreter's packages (numpy, numba, Pillow...), for a child that runs convtool's copy."""


def picture(path: Path) -> np.ndarray:
    """A 64×64 RGB PNG at ``path`` (readable by everyone); its pixels."""
    pixels = np.random.default_rng(7).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    path.chmod(0o644)
    return pixels


def box3(pixels: np.ndarray) -> np.ndarray:
    """``-k box:3 --border reflect`` as convtool writes 8-bit samples: in [0, 1], rounded."""
    x = pixels / 255.0
    return np.clip(
        np.rint(ndimage.correlate(x, np.ones((3, 3, 1)) / 9, mode="reflect") * 255), 0, 255
    )


def apply_args(src: Path, out: Path) -> list[str]:
    """``--threads 1`` asks for the numba core even for a small picture: it compiles."""
    options = ["-k", "box:3", "--border", "reflect", "--threads", "1"]
    return ["apply", str(src), *options, "-o", str(out)]


def numba_indexes(cache: Path) -> list[Path]:
    """The index files numba wrote for ``_jit`` under a cache directory."""
    return sorted(cache.glob("_jit_*/*.nbi"))


# A read-only install, run by nobody --------------------------------------------------------


@dataclass(frozen=True)
class Install:
    """convtool copied where uid 65534 can read but not write, and how to run it as that user."""

    base: Path
    site: Path
    python: str

    def convtool(self, home: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return self.python_run(home, tmp, "-m", "convtool", *args)

    def python_run(self, home: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.python, *args],
            cwd=self.base,
            env=self.environment(home, tmp),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            user=NOBODY,
            group=NOBODY,
            extra_groups=[],
        )

    def environment(self, home: Path, tmp: Path) -> dict[str, str]:
        """No NUMBA_* (NUMBA_CACHE_DIR above all) nor XDG_* (numba's home cache follows
        XDG_CACHE_HOME) from the test's own environment; compiling in the foreground."""
        skipped = ("NUMBA_", "CONVTOOL_", "PYTHON", "XDG_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(skipped)}
        env.update(
            HOME=str(home),
            TMPDIR=str(tmp),
            CONVTOOL_COMPILE="now",
            PYTHONPATH=os.pathsep.join([str(self.site), *SITE_PACKAGES]),
        )
        return env


def _copy_read_only(site: Path) -> None:
    """convtool's sources (no caches) under ``site``: root's, directories 0755, files 0644."""
    shutil.copytree(SRC, site / "convtool", ignore=shutil.ignore_patterns("__pycache__"))
    for path in [site, *site.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


RUNTIME_PACKAGES = (
    "numpy", "numpy.libs", "numba", "llvmlite", "PIL", "pillow.libs", "typer", "click", "rich",
    "shellingham", "tifffile", "imagecodecs", "imagecodecs.libs", "annotated_doc",
    "markdown_it", "mdurl", "pygments", "typing_extensions.py",
)  # fmt: skip
"""What ``convtool apply`` imports from this environment (and what those import)."""


def _link_packages(site: Path) -> bool:
    """This environment's runtime packages beside convtool's copy, hard-linked (copied across
    file systems), for when the environment's own folders are closed to uid 65534."""
    try:
        for root in SITE_PACKAGES:
            for name in RUNTIME_PACKAGES:
                source, target = Path(root) / name, site / name
                if target.exists() or not source.exists():
                    continue
                if source.is_dir():
                    shutil.copytree(source, target, copy_function=_link_or_copy)
                else:
                    _link_or_copy(str(source), str(target))
        for path in [site, *site.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
    except OSError:
        return False
    return True


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


_PROBE = (
    "import os, sys, numba, numpy, PIL, typer, convtool\n"
    "where = os.path.dirname(convtool.__file__)\n"
    "print(sys.implementation.cache_tag, where, os.access(where, os.W_OK))\n"
)


def _interpreter(install: Install, tmp: Path) -> tuple[str | None, list[str]]:
    """An interpreter uid 65534 can run convtool's copy with (this one, or this version's
    system python with this environment's packages), and what was tried."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [sys.executable, os.path.realpath(sys.executable)]
    candidates += [f"{d}/python{version}" for d in ("/usr/local/bin", "/usr/bin")]
    expected = f"{sys.implementation.cache_tag} {install.site / 'convtool'} False"
    tried = []
    for python in dict.fromkeys(c for c in candidates if os.path.exists(c)):
        try:
            done = Install(install.base, install.site, python).python_run(tmp, tmp, "-c", _PROBE)
        except OSError as exc:  # e.g. an interpreter under root's 0700 home
            tried.append(f"{python}: {exc.strerror}")
            continue
        if done.returncode == 0 and done.stdout.strip() == expected:
            return python, tried
        tried.append(f"{python}: {(done.stderr.strip().splitlines() or [done.stdout])[-1]}")
    return None, tried


@pytest.fixture(scope="module")
def install() -> Iterator[Install]:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("runs convtool as uid 65534: the test must run as root to drop privileges")
    base = Path(tempfile.mkdtemp(prefix="convtool-readonly-"))
    try:
        base.chmod(0o755)
        _copy_read_only(base / "site")
        probe = base / "probe"
        probe.mkdir()
        os.chown(probe, NOBODY, NOBODY)
        python, tried = _interpreter(Install(base, base / "site", python=""), probe)
        if python is None and _link_packages(base / "site"):  # the venv sits out of its reach
            python, more = _interpreter(Install(base, base / "site", python=""), probe)
            tried += more
        if python is None:
            pytest.skip(
                f"uid {NOBODY} cannot run convtool from {base} with this environment's packages "
                f"(a path component not traversable for it?): {'; '.join(tried)}"
            )
        yield Install(base, base / "site", python)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _owned_by_nobody(path: Path, mode: int) -> Path:
    path.mkdir()
    os.chown(path, NOBODY, NOBODY)
    path.chmod(mode)
    return path


def _assert_filtered(done: subprocess.CompletedProcess[str], out: Path, pixels: np.ndarray):
    report = f"exit {done.returncode}\nstderr:\n{done.stderr}"
    assert done.returncode == 0, report
    assert done.stderr == "", report  # stderr is no terminal: not even the compiling note
    with Image.open(out) as im:
        np.testing.assert_array_equal(np.asarray(im), box3(pixels))


@pytest.mark.slow
def test_a_read_only_install_caches_in_the_users_home(install: Install):
    """numba's own fallback: the install is read-only for its user, the home is writable, and
    the compiled core goes to ~/.cache/numba (no private directory, nothing in the install)."""
    work = _owned_by_nobody(install.base / "home-case", 0o755)
    home, tmp = _owned_by_nobody(work / "home", 0o700), _owned_by_nobody(work / "tmp", 0o700)
    pixels = picture(work / "x.png")
    done = install.convtool(home, tmp, *apply_args(work / "x.png", work / "y.png"))
    _assert_filtered(done, work / "y.png", pixels)
    assert numba_indexes(home / ".cache" / "numba"), sorted(home.rglob("*"))
    assert list(tmp.iterdir()) == []
    assert list(install.site.rglob("*.nbi")) == []


@pytest.mark.slow
def test_a_read_only_install_without_a_home_caches_in_a_private_temporary_directory(
    install: Install,
):
    """The regression: nobody, HOME=/nonexistent, the install read-only: the run succeeds, the
    cache is <tmp>/convtool-numba-65534, mode 0700, owned by nobody."""
    if os.path.exists("/nonexistent"):
        pytest.skip("/nonexistent exists on this machine: it is no missing home")
    work = _owned_by_nobody(install.base / "no-home-case", 0o755)
    tmp = _owned_by_nobody(work / "tmp", 0o700)
    pixels = picture(work / "x.png")
    done = install.convtool(Path("/nonexistent"), tmp, *apply_args(work / "x.png", work / "y.png"))
    _assert_filtered(done, work / "y.png", pixels)
    private = tmp / f"convtool-numba-{NOBODY}"
    info = private.lstat()
    assert stat.S_ISDIR(info.st_mode) and info.st_uid == NOBODY
    assert stat.S_IMODE(info.st_mode) == 0o700
    assert numba_indexes(private), sorted(tmp.rglob("*"))
    assert list(install.site.rglob("*.nbi")) == []


def test_only_the_cache_core_imports_the_numba_module():
    """A regression: learn imported ``convtool._jit`` itself, before any cache directory was
    chosen, and failed as nobody without a home; only ``compiled.core()`` may import it."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "compiled.py" or "_jit" in path.relative_to(SRC).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):  # from convtool import _jit, from . import _jit
                names = [f"{node.module or ''}.{a.name}" for a in node.names]
                names.append(node.module or "")
            if any(n == "_jit" or n.endswith("._jit") for n in names):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == []


# The private directory, in-process ---------------------------------------------------------


@pytest.fixture
def temporary(tmp_path, monkeypatch) -> Path:
    """``tempfile.gettempdir()`` is ``tmp_path`` (mkdtemp's default place with it)."""
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    return tmp_path


def test_the_private_directory_is_made_mode_0700_and_reused(temporary):
    first = compiled.private_cache_dir()
    assert first == temporary / f"convtool-numba-{os.getuid()}"
    assert stat.S_IMODE(first.stat().st_mode) == 0o700 and first.stat().st_uid == os.getuid()
    assert compiled.private_cache_dir() == first


def _another_users(tmp: Path, monkeypatch) -> Path:
    """A directory made by someone else: by this user (root in CI) for uid 65534, as which
    ``os.getuid`` answers from now on."""
    owner = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: NOBODY if owner != NOBODY else NOBODY - 1)
    path = tmp / f"convtool-numba-{os.getuid()}"
    path.mkdir(mode=0o755)
    return path


def _a_symlink_to_ones_own(tmp: Path, monkeypatch) -> Path:
    path = tmp / f"convtool-numba-{os.getuid()}"
    (tmp / "elsewhere").mkdir(mode=0o700)
    path.symlink_to(tmp / "elsewhere")
    return path


def _a_dangling_symlink(tmp: Path, monkeypatch) -> Path:
    path = tmp / f"convtool-numba-{os.getuid()}"
    path.symlink_to(tmp / "nowhere")
    return path


def _a_file(tmp: Path, monkeypatch) -> Path:
    path = tmp / f"convtool-numba-{os.getuid()}"
    path.write_text("")
    return path


def _ones_own_open_to_others(tmp: Path, monkeypatch) -> Path:
    path = tmp / f"convtool-numba-{os.getuid()}"
    path.mkdir()
    path.chmod(0o777)
    return path


SQUATTERS = [
    _another_users,
    _a_symlink_to_ones_own,
    _a_dangling_symlink,
    _a_file,
    _ones_own_open_to_others,
]


@pytest.mark.parametrize("squat", SQUATTERS, ids=[f.__name__.lstrip("_") for f in SQUATTERS])
def test_a_taken_name_is_not_used(temporary, monkeypatch, squat):
    """<tmp>/convtool-numba-<uid> made by another user (or not a private directory) is refused:
    a fresh mkdtemp directory, mode 0700, serves instead, and the taken name is left alone."""
    taken = squat(temporary, monkeypatch)
    before = taken.lstat()
    got = compiled.private_cache_dir()
    assert got != taken and got.parent == temporary and got.name.startswith("convtool-numba-")
    info = got.lstat()
    assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700
    after = taken.lstat()
    assert (after.st_ino, after.st_mode, after.st_uid) == (
        before.st_ino,
        before.st_mode,
        before.st_uid,
    )
    if stat.S_ISDIR(before.st_mode):
        assert list(taken.iterdir()) == []


# The note while compiling --------------------------------------------------------------------


def test_the_note_is_shown_once_per_process(monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(compiled, "_noted", False)
    with compiled.configured(policy="now", note=shown.append):
        compiled.notify_compiling()
        compiled.notify_compiling()
    assert len(shown) == 1 and shown[0].startswith("compiling the filter core")


def _stderr_on_a_terminal(command: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run ``command`` with stderr on a pseudo-terminal; its exit code and what it showed."""
    code, shown = stderr_on_a_terminal(command, env=env, timeout=TIMEOUT)
    return code, shown.decode().replace("\r\n", "\n")


@pytest.mark.slow
def test_the_compiling_note_is_shown_on_a_terminal_only(tmp_path):
    """One note while numba compiles in the foreground, when stderr is a terminal; none when
    it is a pipe (each run compiles: a fresh cache), none once the cache has the core."""
    pixels = picture(tmp_path / "x.png")
    env = {**os.environ, "CONVTOOL_COMPILE": "now", "NUMBA_CACHE_DIR": str(tmp_path / "tty")}
    code, shown = _stderr_on_a_terminal(
        [*CONVTOOL, *apply_args(tmp_path / "x.png", tmp_path / "t.png")], env
    )
    assert code == 0, shown
    lines = shown.splitlines()
    assert len(lines) == 1 and lines[0].startswith(COMPILING), shown
    assert numba_indexes(tmp_path / "tty")

    code, shown = _stderr_on_a_terminal(
        [*CONVTOOL, *apply_args(tmp_path / "x.png", tmp_path / "w.png")], env
    )
    assert (code, shown) == (0, "")  # warm: loaded from the cache, nothing compiles

    env["NUMBA_CACHE_DIR"] = str(tmp_path / "pipe")
    done = subprocess.run(
        [*CONVTOOL, *apply_args(tmp_path / "x.png", tmp_path / "p.png")],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert numba_indexes(tmp_path / "pipe")  # it did compile, without a word
    for name in ("t.png", "w.png", "p.png"):
        with Image.open(tmp_path / name) as im:
            np.testing.assert_array_equal(np.asarray(im), box3(pixels))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to watch the compile")
def test_first_run_twin_then_background_compile_same_bytes(tmp_path):
    """An empty cache: the first run writes its output at once (numpy twin) and asks for a
    background compile; the second run, compiled, writes the same bytes. The kernel is large
    enough for its work to pass ``compiled.TWIN_BUDGET`` (below it, a command runs the twin
    without loading numba at all)."""
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (600, 720, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    side = int((compiled.TWIN_BUDGET / (600 * 720 * 3)) ** 0.5) + 1
    np.savetxt(tmp_path / "k.txt", rng.standard_normal((side + 1, side)) / side)
    env = {k: v for k, v in os.environ.items() if k != "CONVTOOL_COMPILE"}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "cache")
    outputs = []
    for n in (1, 2):
        out = tmp_path / f"out{n}.png"
        done = subprocess.run(
            [*CONVTOOL, "apply", str(tmp_path / "in.png"), "-k", f"@{tmp_path / 'k.txt'}",
             "--map", "abs", "-o", str(out)],
            env=env, capture_output=True, text=True, timeout=TIMEOUT,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        outputs.append(out.read_bytes())
        if n == 1:
            assert not numba_indexes(tmp_path / "cache"), "the first run compiled"
            assert stop_background_compilers(tmp_path / "cache") == 1, "no compile was asked for"
            env["CONVTOOL_COMPILE"] = "now"  # compiled here, at the tests' priority
    assert numba_indexes(tmp_path / "cache")
    assert outputs[0] == outputs[1]
