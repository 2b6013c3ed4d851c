"""Reliability of outputs (issue 16): templates that stay in their folder, special files,
links in shared directories, setuid bits, SIGKILL mid-write, names that cannot forge lines.

Each test runs ``python -m convtool`` as a real process on real files, as a script would.
"""

from __future__ import annotations

import io
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from conftest import writing_into

CONVTOOL = [sys.executable, "-m", "convtool"]
TIMEOUT = 120
ERROR = "convtool: error: "


def grey(seed: int, shape: tuple[int, int] = (12, 16)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CONVTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT
    )


def one_error(done: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The one ``convtool: error:`` line of a failed run (and nothing else on stderr)."""
    assert done.returncode == code, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR), done.stderr
    return lines[0]


def listing(folder: Path) -> dict[str, bytes | str]:
    """Every entry of ``folder``: a file's bytes, or what a link or special file is."""
    found: dict[str, bytes | str] = {}
    for entry in sorted(os.listdir(folder)):
        path = folder / entry
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            found[entry] = "-> " + os.readlink(path)
        elif stat.S_ISREG(mode):
            found[entry] = path.read_bytes()
        else:
            found[entry] = stat.filemode(mode)[0]
    return found


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    """A folder with in.png (12x16 grey) and b.png."""
    (tmp_path / "in.png").write_bytes(png_bytes(grey(1)))
    (tmp_path / "b.png").write_bytes(png_bytes(grey(2)))
    return tmp_path


def reference(scene: Path, source: str = "in.png") -> bytes:
    """What ``apply SOURCE -k box`` writes into a regular file."""
    done = run(scene, "apply", source, "-k", "box", "-o", "reference.png")
    assert done.returncode == 0, done.stderr
    data = (scene / "reference.png").read_bytes()
    (scene / "reference.png").unlink()
    return data


# Templates ------------------------------------------------------------------------------------


def test_a_stem_of_dot_dot_does_not_climb_out_of_the_output_folder(scene):
    """``Path('...png').stem`` is ``..``: '{stem}/x.png' would write ./x.png, beside out/."""
    (scene / "...png").write_bytes(png_bytes(grey(3)))
    (scene / "x.png").write_bytes(b"precious")
    before = listing(scene)
    line = one_error(run(scene, "apply", "...png", "b.png", "-k", "box", "--out-dir", "out",
                         "-o", "{stem}/x.png"), code=2)  # fmt: skip
    assert "{stem} of '...png' is '..'" in line and "climbing out of the output folder" in line
    assert listing(scene) == before


def test_a_stem_of_dot_dot_beside_other_text_is_a_plain_name(scene):
    (scene / "...png").write_bytes(png_bytes(grey(3)))
    done = run(scene, "apply", "...png", "b.png", "-k", "box", "--out-dir", "out",
               "-o", "{stem}-x.png")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(scene / "out")) == ["..-x.png", "b-x.png"]


@pytest.mark.parametrize("template", ["/abs/{stem}.png", "../{stem}.png", "a/../../{stem}.png"])
def test_a_template_that_leaves_out_dir_is_refused(scene, template):
    """An absolute template was silently preferred to --out-dir; '..' climbed out of it."""
    before = listing(scene)
    line = one_error(run(scene, "apply", "in.png", "b.png", "-k", "box", "--out-dir", "out",
                         "-o", template), code=2)  # fmt: skip
    assert f"-o template {template!r} leaves --out-dir out" in line
    assert listing(scene) == before


def test_out_dir_alone_never_names_a_result_that_climbs(scene):
    line = one_error(run(scene, "apply", "gone/..", "-k", "box", "--out-dir", "out"), code=2)
    assert "gone/.. ends in '..', not a file name" in line
    assert not (scene / "out").exists()


@pytest.mark.parametrize(
    ("template", "what"),
    [("box/{stem.png", "the '{' at position 5 is never closed"),
     ("box/stem}.png", "the '}' at position 9 closes no placeholder"),
     ("{stem}-{.png", "the '{' at position 8 is never closed")],
)  # fmt: skip
def test_an_unclosed_placeholder_says_what_is_wrong_with_the_template(scene, template, what):
    """It said 'several inputs need --out-dir', about something else."""
    for inputs in (["in.png", "b.png"], ["in.png"]):
        line = one_error(run(scene, "apply", *inputs, "-k", "box", "-o", template), code=2)
        assert line == (
            f"{ERROR}-o template {template!r}: {what}; a placeholder is written whole, e.g. -o "
            "'box/{stem}.png' ({stem}, {name}, {ext}, {dir})"
        )
    assert sorted(os.listdir(scene)) == ["b.png", "in.png"]


# Special files -------------------------------------------------------------------------------


def test_a_fifo_output_is_written_into_not_replaced(scene):
    """The FIFO was replaced by a regular file and its reader got nothing."""
    expected = reference(scene)
    fifo = scene / "f.png"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    done = run(scene, "apply", "in.png", "-k", "box", "-o", "f.png")
    reader.join(TIMEOUT)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert received == [expected]


def test_a_character_device_output_is_written_into_not_replaced(scene):
    """``mknod n.png c 1 3`` (a /dev/null) was replaced by a regular file."""
    device = scene / "n.png"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device needs CAP_MKNOD")
    done = run(scene, "apply", "in.png", "-k", "box", "-o", "n.png")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert stat.S_ISCHR(os.lstat(device).st_mode)
    assert os.lstat(device).st_rdev == os.makedev(1, 3)
    assert sorted(os.listdir(scene)) == ["b.png", "in.png", "n.png"]


def test_a_full_device_is_one_error_line(scene):
    """A device that refuses the bytes (a private /dev/full: never the system's, which the
    old code replaced with a file) is one error line, the device left as it was."""
    device = scene / "full.png"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    except PermissionError:
        pytest.skip("creating a device needs CAP_MKNOD")
    line = one_error(run(scene, "apply", "in.png", "-k", "box", "-o", "full.png"))
    assert line == (
        f"{ERROR}full.png: cannot be written (No space left on device); what reached this "
        "character device is incomplete"
    )
    assert stat.S_ISCHR(os.lstat(device).st_mode)
    assert os.lstat(device).st_rdev == os.makedev(1, 7)


def test_a_socket_output_is_refused_in_one_line(scene):
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(scene / "s.png"))
        before = listing(scene)
        line = one_error(run(scene, "apply", "in.png", "-k", "box", "-o", "s.png"))
        assert line == (
            f"{ERROR}s.png: is a socket; convtool writes regular files, FIFOs and character "
            "devices: give another output name"
        )
        assert listing(scene) == before


def test_a_loop_of_links_is_refused_not_replaced(scene):
    """A loop given as -o was replaced by a plain file, with exit code 0."""
    (scene / "one.png").symlink_to("two.png")
    (scene / "two.png").symlink_to("one.png")
    before = listing(scene)
    line = one_error(run(scene, "apply", "in.png", "-k", "box", "-o", "one.png"))
    assert line.startswith(f"{ERROR}one.png: a loop of symbolic links")
    assert listing(scene) == before


# Links in shared sticky directories, setuid bits ---------------------------------------------


def _sticky_folder_with_a_link(scene: Path, owner: int) -> tuple[Path, Path]:
    """A world-writable sticky folder (as /tmp) holding link.png -> the caller's victim.png,
    the link owned by ``owner``."""
    shared = scene / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    victim = scene / "victim.png"
    victim.write_bytes(b"the caller's file")
    link = shared / "link.png"
    link.symlink_to(victim)
    try:
        os.lchown(link, owner, owner)
    except PermissionError:
        pytest.skip("giving a link to another user needs CAP_CHOWN")
    return shared, victim


def test_another_users_link_in_a_sticky_directory_is_not_written_through(scene):
    """The /tmp symlink attack: someone else's link in /tmp pointing at one of our files."""
    stranger = 65534 if os.geteuid() != 65534 else 65533
    shared, victim = _sticky_folder_with_a_link(scene, stranger)
    line = one_error(run(scene, "apply", "in.png", "-k", "box", "-o", "shared/link.png"))
    assert line.startswith(
        f"{ERROR}shared/link.png: a symbolic link of another user (uid {stranger}) in the "
        "shared directory shared; convtool does not write through it"
    )
    assert victim.read_bytes() == b"the caller's file"
    assert os.readlink(shared / "link.png") == str(victim)


def test_ones_own_link_in_a_sticky_directory_is_written_through(scene):
    shared, victim = _sticky_folder_with_a_link(scene, os.geteuid())
    done = run(scene, "apply", "in.png", "-k", "box", "-o", "shared/link.png")
    assert done.returncode == 0, done.stderr
    assert victim.read_bytes() == reference(scene)
    assert (shared / "link.png").is_symlink()


def test_a_replaced_file_does_not_inherit_setuid_or_setgid(scene):
    """``chmod 6755 out.png`` survived the replacement."""
    out = scene / "out.png"
    out.write_bytes(b"old")
    out.chmod(0o6755)
    done = run(scene, "apply", "in.png", "-k", "box", "-o", "out.png")
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert out.read_bytes() == reference(scene)


# SIGKILL while a result is written -----------------------------------------------------------


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to watch the write")
@pytest.mark.parametrize("suffix", [".tif", ".npy"])
def test_sigkill_during_a_streamed_write_leaves_nothing(tmp_path, suffix):
    """14 kills of 14 left the hidden .out.tif.<hex>.tmp beside the target. Three kills, each
    at another moment of the write: nothing is left but the input."""
    source = tmp_path / f"big{suffix}"
    pixels = grey(7, (2400, 2400))
    if suffix == ".tif":
        tifffile.imwrite(source, pixels)
    else:
        np.save(source, pixels.astype(np.float64))
    rng = random.Random(16)
    kills = 0
    for attempt in range(3):
        proc = subprocess.Popen(
            [*CONVTOOL, "apply", source.name, "-k", "gaussian:2", "--memory", "2M",
             "-o", f"out{suffix}"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + TIMEOUT
            while not writing_into(proc.pid, tmp_path) and proc.poll() is None:
                assert time.monotonic() < deadline, "the write never started"
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.3) * attempt)
            proc.send_signal(signal.SIGKILL)
            kills += proc.wait(TIMEOUT) == -signal.SIGKILL
        finally:
            proc.kill()
            proc.wait(TIMEOUT)
        assert sorted(os.listdir(tmp_path)) == [source.name], f"kill {attempt + 1}"
    assert kills == 3, "the runs ended before they could be killed"


# Names that cannot forge a line ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["a\nconvtool: error: forged.png", "b\rc.png", "tab\tand\x1b(0red.png", "\u2028x.png"],
)
def test_a_name_with_a_control_character_stays_in_its_line(scene, name):
    """A name holding a newline split the error line, or forged a second error line."""
    line = one_error(run(scene, "apply", name, "-k", "box", "-o", "out.png"))
    assert line == f"{ERROR}{name!r}: no such file"
    (scene / name).write_bytes(b"not an image")
    line = one_error(run(scene, "apply", name, "-k", "box", "-o", "out.png"))
    assert line.startswith(f"{ERROR}{name!r}: not an image")
    done = run(scene, "apply", "in.png", name, "-k", "box", "--out-dir", "out")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith(ERROR) for line in lines), done.stderr
    assert lines[1] == f"{ERROR}1 of 2 inputs failed ({name!r})"
    line = one_error(run(scene, "apply", "in.png", "-k", "box", "-o", f"{name}/out.png"))
    assert line.startswith(f"{ERROR}{(name + '/out.png')!r}: directory {name!r} does not exist")
