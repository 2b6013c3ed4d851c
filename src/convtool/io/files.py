"""Writing files safely: atomic replacement, standard output, special files.

A regular file is written beside its target and put in place whole. On Linux it is written as
an unnamed file (``O_TMPFILE``) and given its name once complete, so that even SIGKILL leaves
nothing behind; elsewhere (or where the file system has no unnamed files) as a hidden
``.NAME.<random>.tmp``, renamed over the target. FIFOs and character devices are streams: they
are written directly. Block devices, sockets and loops of links are refused.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import secrets
import shutil
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from convtool.errors import ImageError, quoted

MAX_LINKS = 40
"""Symbolic links followed in a row before the output is taken for a loop (Linux's limit)."""

_STREAMS = ("FIFO", "character device")
_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000


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
    """Write ``payload`` to ``path`` whole or not at all (see :func:`atomic_file`).

    A failed or interrupted write leaves no partial file and never destroys an existing one;
    ``path`` may be the file that was read. The new file gets the old one's permissions less
    setuid and setgid (or the usual ones for a new file, 0666 minus the umask).
    """
    with atomic_file(path, seekable=False) as fp:
        fp.write(payload)


@contextlib.contextmanager
def atomic_file(path: Path, *, seekable: bool = True) -> Iterator[BinaryIO]:
    """A file to write ``path``'s new content into, put in place when the block ends without
    error (the streamed path writes in pieces; ``seekable``: it also seeks).

    A symbolic link is followed: the file it points to is replaced and the link stays, as
    ImageMagick and Pillow, which write through it, leave it (``latest.png -> runs/42.png``);
    except another user's link in a shared sticky directory such as /tmp, refused as the
    kernel's ``fs.protected_symlinks`` refuses it. A FIFO or a character device is written
    directly (a stream cannot be replaced; what reached it is not taken back on failure).
    """
    kind = _kind(path)
    target = _followed(path)
    if kind in _STREAMS:
        with _stream(path, kind, seekable=seekable) as fp:
            yield fp
        return
    if kind == "directory":
        raise ImageError(f"{quoted(path)}: is a directory; give a file name for the output")
    if kind is not None:
        raise ImageError(
            f"{quoted(path)}: is a {kind}; convtool writes regular files, FIFOs and character "
            "devices: give another output name"
        )
    directory = target.parent
    if not directory.is_dir():
        raise ImageError(
            f"{quoted(path)}: directory {str(directory)!r} does not exist; create it first "
            "(--out-dir and -o templates create theirs)"
        )
    try:
        with _replacing(target) as fp:
            yield fp
    except OSError as exc:
        raise ImageError(f"{quoted(path)}: cannot be written ({exc.strerror or exc})") from None


def _kind(path: Path) -> str | None:
    """What ``path`` names once its links are followed; None for a regular file or nothing."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageError(_loop(path)) from None
        return None  # missing, or a folder that is not one: said when it is written
    if stat.S_ISREG(mode):
        return None
    kinds = (
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    )
    return next((kind for test, kind in kinds if test(mode)), "special file")


def _loop(path: Path) -> str:
    return (
        f"{quoted(path)}: a loop of symbolic links (or more than {MAX_LINKS} in a row); "
        "remove the link or give another output name"
    )


def _followed(path: Path) -> Path:
    """``path`` with its own symbolic links followed one by one, each checked as the kernel
    checks the links it follows in shared sticky directories (the folders above are left to
    the kernel, which checks them when the file is written)."""
    for _ in range(MAX_LINKS):
        try:
            info = os.lstat(path)
        except OSError:
            return path
        if not stat.S_ISLNK(info.st_mode):
            return path
        _check_link(path, info)
        path = path.parent / os.readlink(path)
    raise ImageError(_loop(path))


def _check_link(link: Path, info: os.stat_result) -> None:
    """Refuse a link in a world-writable sticky directory (/tmp) that neither the caller nor
    the directory's owner owns: someone else may have put it there to have convtool replace a
    file of the caller's (the rule of ``fs.protected_symlinks``)."""
    if not hasattr(os, "geteuid"):
        return
    try:
        folder = os.stat(link.parent)
    except OSError:
        return
    shared = folder.st_mode & stat.S_ISVTX and folder.st_mode & stat.S_IWOTH
    if shared and info.st_uid not in (os.geteuid(), folder.st_uid):
        raise ImageError(
            f"{quoted(link)}: a symbolic link of another user (uid {info.st_uid}) in the shared "
            f"directory {quoted(link.parent)}; convtool does not write through it (it could "
            "point at any of your files): remove it or give another output name"
        )


@contextlib.contextmanager
def _stream(path: Path, kind: str, *, seekable: bool) -> Iterator[BinaryIO]:
    """A FIFO or character device opened for writing (a FIFO waits for its reader)."""
    if seekable and kind == "FIFO":
        raise ImageError(
            f"{quoted(path)}: is a FIFO, and a result filtered in bands is written out of order; "
            "write it to a regular file"
        )
    try:
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
        with open(fd, "wb") as fp:
            if seekable and not fp.seekable():
                raise ImageError(
                    f"{quoted(path)}: is a {kind} that cannot seek, and a result filtered in "
                    "bands is written out of order; write it to a regular file"
                )
            yield fp
    except OSError as exc:
        raise ImageError(
            f"{quoted(path)}: cannot be written ({exc.strerror or exc}); what reached this "
            f"{kind} is incomplete"
        ) from None


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[BinaryIO]:
    """A new file for ``path``, named ``path`` once the block ends without error."""
    mode = _permissions(path)
    fp = _unnamed(path)
    if fp is None:
        with _hidden(path, mode) as named:
            yield named
        return
    with fp:
        yield fp
        fp.flush()
        os.fsync(fp.fileno())
        os.fchmod(fp.fileno(), mode)
        _name(fp, path, mode)


def _unnamed(path: Path) -> BinaryIO | None:
    """An unnamed file in ``path``'s directory (Linux's ``O_TMPFILE``), gone with the process
    until it is linked; None where the system or the file system has none."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag:
        return None
    try:
        fd = os.open(path.parent, flag | os.O_RDWR | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    raw = io.FileIO(fd, "r+", closefd=True)
    raw.name = str(path)  # writers such as tifffile want a name
    return io.BufferedRandom(raw)


def _name(fp: BinaryIO, path: Path, mode: int) -> None:
    """Link the unnamed file ``fp`` at ``path``: at once when nothing is there, else under a
    hidden name renamed over it; copied into a hidden file where it cannot be linked."""
    fd = fp.fileno()
    with contextlib.suppress(FileExistsError):
        if _link(fd, str(path)):
            return
    with _hidden(path, mode) as named:
        # A link under the hidden name is an instant; a copy is the system's last resort.
        named.close()
        os.unlink(named.name)
        if not _link(fd, named.name):
            with open(named.name, "x+b") as copy:
                fp.seek(0)
                shutil.copyfileobj(fp, copy, 1 << 20)
                copy.flush()
                os.fsync(copy.fileno())


def _link(fd: int, name: str) -> bool:
    """Give the unnamed file ``fd`` the name ``name`` (FileExistsError when it is taken);
    False where neither ``/proc/self/fd`` nor ``AT_EMPTY_PATH`` lets this process do it."""
    try:
        os.link(f"/proc/self/fd/{fd}", name, follow_symlinks=True)
        return True
    except FileExistsError:
        raise
    except OSError:
        pass  # no /proc, or a mount it crosses: ask linkat for the descriptor itself
    linkat = _linkat()
    if linkat is None:
        return False
    if linkat(fd, b"", _AT_FDCWD, os.fsencode(name), _AT_EMPTY_PATH) == 0:
        return True
    import ctypes

    code = ctypes.get_errno()
    if code == errno.EEXIST:
        raise FileExistsError(code, os.strerror(code), name)
    return False


@functools.cache
def _linkat() -> Callable[..., int] | None:
    """The C library's ``linkat``, loaded once; None where there is none."""
    try:
        import ctypes

        function: Callable[..., int] = ctypes.CDLL(None, use_errno=True).linkat
    except (OSError, AttributeError, ImportError):
        return None
    return function


@contextlib.contextmanager
def _hidden(path: Path, mode: int) -> Iterator[BinaryIO]:
    """A hidden ``.NAME.<random>.tmp`` beside ``path``, renamed over it at the end; removed on
    any failure or signal."""
    tmp = ""
    try:
        while not tmp:
            # The name is known before the file exists, so that a signal arriving between its
            # creation and the next line still finds it to remove (mkstemp would hide it).
            tmp = os.path.join(path.parent, f".{path.name}.{secrets.token_hex(6)}.tmp")
            try:
                fp = open(tmp, "x+b")  # noqa: SIM115  (by name: tifffile wants fp.name)
            except FileExistsError:
                tmp = ""
        with fp:
            yield fp
            if not fp.closed:
                fp.flush()
                os.fsync(fp.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise


def _permissions(path: Path) -> int:
    """The old file's permissions, never its setuid and setgid bits (the new content is not
    the program someone made setuid); for a new file 0666 minus the umask."""
    try:
        return path.stat().st_mode & 0o7777 & ~(stat.S_ISUID | stat.S_ISGID)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
