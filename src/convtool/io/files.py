"""Writing files safely: atomic replacement, standard output, special files."""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from convtool.errors import ImageError


def write_output(payload: bytes, target: str | Path | None) -> None:
    """Write ``payload`` to ``target`` atomically, or to standard output for None or ``-``."""
    if target is None or str(target) == "-":
        try:
            sys.stdout.buffer.write(payload)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            # The reader is gone (``| head -c 10``): point stdout at devnull so that the final
            # flush at exit stays quiet, and let the caller end the run.
            _silence_stdout()
            raise
        except OSError as exc:
            # A full disk (``>/dev/full``) or a device error: what was written is incomplete
            # anyway; drop what is still buffered so that the exit stays one error line.
            _silence_stdout()
            raise ImageError(
                f"standard output: cannot be written ({exc.strerror or exc}); the output there "
                "is incomplete"
            ) from None
        return
    write_atomic(Path(target), payload)


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass
    finally:
        os.close(devnull)


def write_atomic(path: Path, payload: bytes) -> None:
    """Write to a temporary file in the target directory, then rename it over ``path``.

    A failed or interrupted write leaves no partial file and never destroys an existing one;
    ``path`` may be the file that was read. The new file gets the old one's permissions (or
    the usual ones for a new file, 0666 minus the umask).
    """
    with atomic_file(path) as fp:
        fp.write(payload)


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A temporary file beside ``path``, renamed over it when the block ends without error.

    What :func:`write_atomic` does, for writers that write in pieces (the streamed path). A
    symbolic link is followed: the file it points to is replaced and the link stays, as
    ImageMagick and Pillow, which write through it, leave it (``latest.png -> runs/42.png``).
    """
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    directory = path.parent
    if path.is_dir():
        raise ImageError(f"{path}: is a directory; give a file name for the output")
    if not directory.is_dir():
        raise ImageError(
            f"{path}: directory {str(directory)!r} does not exist; create it first "
            "(--out-dir and -o templates create theirs)"
        )
    tmp = ""
    try:
        while not tmp:
            # The name is known before the file exists, so that a signal arriving between its
            # creation and the next line still finds it to remove (mkstemp would hide it).
            tmp = os.path.join(directory, f".{path.name}.{secrets.token_hex(6)}.tmp")
            try:
                fp = open(tmp, "x+b")  # noqa: SIM115  (by name: tifffile wants fp.name)
            except FileExistsError:
                tmp = ""
        with fp:
            yield fp
            fp.flush()
            os.fsync(fp.fileno())
        os.chmod(tmp, _permissions(path))
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError):
            raise ImageError(f"{path}: cannot be written ({exc.strerror or exc})") from None
        raise


def _permissions(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
