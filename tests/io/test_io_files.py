"""Safe writes: atomic replacement, symlinks, interruptions, standard output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from convtool.errors import ImageError
from convtool.io.files import write_atomic, write_output

# Safe writes ---------------------------------------------------------------------------------


def test_write_atomic_replaces_and_keeps_permissions(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new" and (target.stat().st_mode & 0o777) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["out.bin"]


def test_write_atomic_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path):
    """A regression: the rename replaced the link itself with a file (latest.png -> runs/42.png
    became a plain latest.png, runs/42.png untouched); ImageMagick writes through links."""
    (tmp_path / "runs").mkdir()
    real = tmp_path / "runs" / "42.png"
    real.write_bytes(b"old")
    os.chmod(real, 0o640)
    link = tmp_path / "latest.png"
    link.symlink_to(Path("runs") / "42.png")
    write_atomic(link, b"new")
    assert link.is_symlink() and os.readlink(link) == str(Path("runs") / "42.png")
    assert real.read_bytes() == b"new" and (real.stat().st_mode & 0o777) == 0o640
    assert sorted(os.listdir(tmp_path / "runs")) == ["42.png"]
    dangling = tmp_path / "new.png"
    dangling.symlink_to("made.png")  # a link to a file not yet there: created
    write_atomic(dangling, b"made")
    assert dangling.is_symlink() and (tmp_path / "made.png").read_bytes() == b"made"


@pytest.mark.parametrize("failure", [KeyboardInterrupt, OSError])
def test_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, failure):
    target = tmp_path / "out.png"
    target.write_bytes(b"precious")

    def broken_fsync(fd: int) -> None:
        raise failure(28, "No space left on device") if failure is OSError else failure()

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(ImageError if failure is OSError else KeyboardInterrupt):
        write_atomic(target, b"half-written")
    assert target.read_bytes() == b"precious"
    assert os.listdir(tmp_path) == ["out.png"]


def test_write_into_a_missing_directory_is_an_error(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        write_atomic(tmp_path / "nope" / "out.png", b"x")


def test_write_output_dash_is_stdout(capfdbinary):
    write_output(b"bytes\n", "-")
    assert capfdbinary.readouterr().out == b"bytes\n"


def test_a_name_is_shown_as_it_is_unless_it_holds_a_control_character():
    from convtool.errors import quoted

    assert quoted("shots/é ≥ 2.png") == "shots/é ≥ 2.png"
    assert quoted(Path("a\nb.png")) == "'a\\nb.png'"
    assert quoted("\udcff.png") == "'\\udcff.png'"  # an undecodable byte
    assert quoted("") == "''"


def test_an_unnamed_file_leaves_nothing_when_the_block_fails(tmp_path):
    """The O_TMPFILE route: the content is linked only at the end, so a failure leaves the
    directory as it was (and a new file is linked at once, with no hidden name)."""
    from convtool.io.files import atomic_file

    target = tmp_path / "out.npy"
    with pytest.raises(RuntimeError), atomic_file(target) as fp:
        fp.write(b"half")
        raise RuntimeError("the writer failed")
    assert os.listdir(tmp_path) == []
    with atomic_file(target) as fp:
        fp.write(b"whole")
        fp.seek(0)
        fp.write(b"W")
    assert target.read_bytes() == b"Whole" and os.listdir(tmp_path) == ["out.npy"]
