"""Matrix files: the one text-matrix parser, the one ``.npy`` reader and writer.

A matrix (``.npy``, ``.txt``, ``.csv``) is read as float64 (H, W) — or (H, W, C) for a 3-D
``.npy`` — holding the raw numbers, never scaled or clipped; ``.npy`` headers are checked
before anything is allocated or unpickled (matrices and kernels alike).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from tokenize import TokenError
from typing import IO, Any

import numpy as np

from convtool.errors import ImageError, KernelError, quoted
from convtool.io.formats import MATRIX_FORMATS
from convtool.io.picture import Metadata, Picture, check_pixels
from convtool.io.pixels import stored_samples
from convtool.io.plan import OutputPlan


def read_npy_header(fp: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype a ``.npy`` file declares, with ``fp`` left at the start of its data.

    Raises ValueError, with numpy's reason on one line, when the header is not a valid
    ``.npy`` header.
    """
    shape, dtype, _ = read_npy_layout(fp)
    return shape, dtype


def read_npy_layout(fp: IO[bytes]) -> tuple[tuple[int, ...], np.dtype, bool]:
    """:func:`read_npy_header` with the header's ``fortran_order`` too."""
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
    except (ValueError, OSError, EOFError, SyntaxError, TokenError) as exc:
        reason = str(exc)
        if "max_header_size" in reason:  # numpy's advice (allow_pickle=True) is not for us
            reason = "its header is larger than numpy reads safely (10000 bytes)"
        raise ValueError(" ".join(reason.split())) from None
    return tuple(int(n) for n in shape), dtype, bool(fortran)


def read_matrix_file(path: Path, name: str, limit: int) -> Picture:
    fmt = MATRIX_FORMATS[path.suffix.lower()]
    if fmt == "NPY":
        with open(path, "rb") as fp:
            return matrix_picture(load_npy(fp, name, limit), fmt, name)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImageError(
            f"{name}: not a text file; a {path.suffix} matrix is rows of numbers"
        ) from None
    return matrix_picture(parse_matrix(text, name, limit), fmt, name)


def load_npy(fp: IO[bytes], name: str, limit: int) -> np.ndarray:
    """A .npy array, checked from its header before anything is allocated: real numbers (never
    unpickled), 2-D or 3-D, not empty, within ``limit`` pixels, and as long as the header says."""
    try:
        shape, dtype = read_npy_header(fp)
    except ValueError as exc:
        raise ImageError(f"{name}: not a numeric .npy array ({exc})") from None
    if dtype.kind not in "biuf":
        what = "Python objects, which convtool never unpickles" if dtype.hasobject else dtype
        raise ImageError(
            f"{name}: holds {what}; a matrix needs real numbers: save it with a numeric dtype "
            "(float64, int32...)"
        )
    if len(shape) not in (2, 3) or 0 in shape:
        raise ImageError(
            f"{name}: a matrix of shape {tuple(shape)}; convtool needs a non-empty 2-D matrix "
            "(H, W) or a 3-D stack of planes (H, W, C)"
        )
    check_pixels(int(shape[1]), int(shape[0]), name, limit)
    start = fp.tell()
    available = fp.seek(0, io.SEEK_END) - start
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if available < expected:
        raise ImageError(
            f"{name}: truncated .npy file: its header promises {expected:,} bytes of data for "
            f"shape {tuple(shape)}, but only {available:,} follow"
        )
    try:
        fp.seek(0)
        data = np.load(fp, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ImageError(f"{name}: not a numeric .npy array ({exc})") from None
    return data


NUMBER = re.compile(
    r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$|^[+-]?(nan|inf|infinity)$", re.I | re.ASCII
)
"""A number as a kernel entry is written: ASCII decimal digits (no other script's digits, which
``float`` would take), or nan/inf (refused later as not finite)."""


def read_number(text: str) -> float:
    """``text`` as a float if it is written as :data:`NUMBER` says (surrounding blanks aside),
    else ValueError: ``float`` without the other scripts' digits (``'١'``, ``'１'``) and
    underscores (``'1_0'``) it also takes. Every number a kernel is written with is read so."""
    stripped = text.strip()
    if not NUMBER.match(stripped):
        raise ValueError(f"not a number: {text!r}")
    return float(stripped)


def matrix_rows(lines: Iterable[str]) -> list[tuple[int, list[str]]]:
    """The rows of a text matrix as (line number, entries): ``#`` starts a comment (a ``;`` in
    one separates no rows), ``;`` separates rows on a line, spaces or commas entries; empty
    rows are dropped. The one tokenizer of matrices, kernels and images alike."""
    return list(iter_matrix_rows(lines))


def iter_lines(text: str) -> Iterator[str]:
    """The lines of ``text`` (``\n`` or ``\r\n`` ends them) one at a time: a large text is
    refused after its first lines, not split whole first."""
    start = 0
    while start <= len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        yield text[start:end].removesuffix("\r")
        start = end + 1


def iter_matrix_rows(lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """:func:`matrix_rows` one row at a time."""
    for number, line in enumerate(lines, 1):
        for row in line.split("#", 1)[0].split(";"):
            entries = [entry for entry in re.split(r"[\s,]+", row) if entry]
            if entries:
                yield number, entries


def parse_matrix(text: str, name: str, max_pixels: int | None = None) -> np.ndarray:
    """Rows of numbers (spaces or commas between entries, ``;`` or new lines between rows,
    ``#`` comments) as a float64 (H, W) array; ImageError for ragged rows and non-numbers.

    ``;`` separates rows on one line only (``0 1; 2 3``): on several lines it is a
    ``;``-separated CSV (where ``,`` may be the decimal mark), refused rather than read as one
    column.
    """
    plain = _parse_plain(text, max_pixels)
    if plain is not None:
        return plain
    lines = text.splitlines()
    written = [(n, line.split("#", 1)[0]) for n, line in enumerate(lines, 1)]
    written = [(n, line) for n, line in written if line.strip()]
    semicolon = next((n for n, line in written if ";" in line), None)
    if len(written) > 1 and semicolon is not None:
        raise ImageError(
            f"{name}: line {semicolon} holds ';' but each line of a matrix file is one row; "
            "separate the numbers of a row by spaces or commas (a ';'-separated CSV: save it "
            "with ',' between numbers and '.' as the decimal mark)"
        )
    rows = matrix_rows(lines)
    if not rows:
        raise ImageError(f"{name}: no numbers found; a text matrix is rows such as '0 1 2'")
    widths = [len(entries) for _, entries in rows]
    odd = next((i for i, n in enumerate(widths) if n != widths[0]), None)
    if odd is not None:
        raise ImageError(
            f"{name}: not a matrix of numbers: ragged rows (row 1 has {widths[0]} entries, "
            f"row {odd + 1} has {widths[odd]}); every row needs the same number of entries"
        )
    if max_pixels is not None:
        check_pixels(widths[0], len(rows), name, max_pixels)
    try:
        data = np.loadtxt([" ".join(entries) for _, entries in rows], dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise ImageError(
            f"{name}: not a matrix of numbers ({exc}); write rows of numbers with the same "
            "number of entries, separated by spaces or commas"
        ) from None
    if max_pixels is not None:
        check_pixels(int(data.shape[1]), int(data.shape[0]), name, max_pixels)
    return data


def _parse_plain(text: str, max_pixels: int | None) -> np.ndarray | None:
    """:func:`parse_matrix` of a plain matrix (new lines between rows, no ``;``) by numpy's C
    reader, whose numbers are :data:`NUMBER`'s and whose memory is the result's, not a Python
    string per entry; None for anything else (ragged rows, non-numbers, a size past
    ``max_pixels``...), which the tokenizer then reads or reports line by line."""
    if ";" in text:
        return None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:  # a lone carriage return: left to the tokenizer
            return None
    first = next(iter_matrix_rows(iter_lines(text)), None)
    if first is None:
        return None
    if max_pixels is not None and (text.count("\n") + 1) * len(first[1]) > max_pixels:
        return None
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.loadtxt(
                io.BytesIO(text.replace(",", " ").encode("utf-8")),
                dtype=np.float64,
                comments="#",
                ndmin=2,
                encoding="utf-8",
            )
    except ValueError:
        return None


def parse_kernel_matrix(text: str, what: str, max_side: int | None = None) -> list[list[float]]:
    """A kernel written as text (``1 0 -1; 2 0 -2``, or a kernel file): rows separated by ``;``
    or new lines, entries decimal numbers (:data:`NUMBER`). KernelError for non-numbers,
    ragged rows, an empty matrix and, as soon as it is seen, a row or a column longer than
    ``max_side`` (a large source is not parsed whole to be refused)."""
    rows: list[list[float]] = []
    for number, entries in iter_matrix_rows(iter_lines(text)):
        if max_side is not None and max(len(entries), len(rows) + 1) > max_side:
            found = (
                f"line {number} holds {len(entries)} numbers"
                if len(entries) > max_side
                else f"more than {max_side} rows (line {number})"
            )
            raise KernelError(
                f"{what}: {found}; the largest kernel side convtool accepts is {max_side}"
            )
        bad = next((entry for entry in entries if not NUMBER.match(entry)), None)
        if bad is not None:
            raise KernelError(
                f"{what}: {bad!r} is not a number; write rows of numbers such as "
                "'1 0 -1; 2 0 -2; 1 0 -1'"
            )
        rows.append([float(entry) for entry in entries])
    if not rows:
        raise KernelError(f"{what}: no numbers found; write rows such as '0 1; 2 3'")
    lengths = sorted({len(r) for r in rows})
    if len(lengths) > 1:
        raise KernelError(
            f"{what}: ragged rows (lengths {lengths}); every row needs the same number of entries"
        )
    return rows


def matrix_picture(data: np.ndarray, fmt: str, name: str) -> Picture:
    if data.ndim not in (2, 3) or data.shape[0] == 0 or data.shape[1] == 0:
        raise ImageError(
            f"{name}: a matrix of shape {data.shape}; convtool needs a non-empty 2-D matrix "
            "(H, W) or a 3-D stack of planes (H, W, C)"
        )
    data = np.array(data, dtype=np.float64, order="C")
    if not np.isfinite(data).all():
        raise ImageError(f"{name}: holds NaN or infinity; every entry must be a finite number")
    return Picture(
        data=data,
        alpha=None,
        is_matrix=True,
        integer_stored=False,
        depth=64,
        format=fmt,
        mode="matrix",
        colors="matrix",
        metadata=Metadata(),
        name=name,
    )


def encode_matrix(picture: Picture, plan: OutputPlan) -> bytes:
    values = stored_samples(picture, plan)
    if plan.format == "NPY":
        buffer = io.BytesIO()
        np.save(buffer, values, allow_pickle=False)
        return buffer.getvalue()
    if values.ndim == 3:
        values = values[..., 0]
    return format_matrix(values, "," if plan.format == "CSV" else " ")


def format_matrix(values: np.ndarray, sep: str = " ") -> bytes:
    """A 2-D array as text rows, each number in its shortest round-trip form (``19``, ``0.1``)."""
    rows = []
    as_python = values.dtype == np.float64
    for row in values:
        items = row.tolist() if as_python else row
        rows.append(sep.join(_format_number(v) for v in items))
    return ("\n".join(rows) + "\n").encode("ascii")


def _format_number(value: Any) -> str:
    text = str(value)
    if text.endswith(".0"):
        text = text[:-2]
    return "0" if text == "-0" else text


FORTRAN_BUFFER = 2**18
"""Bytes of columns a Fortran-order ``.npy`` reader gathers before putting them in place."""


class NpyReader:
    """Rows of a ``.npy`` file, read with ``readinto`` (no memory map, no whole-file read).

    An array stored in Fortran order (``numpy.save`` of a transposed or ``order="F"`` array)
    keeps each column, not each row, together on disk: a band is gathered from a run of every
    column (one read per column and channel; slower than C order, with the same bounded
    memory).
    """

    slack_rows = 0

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            with open(self.path, "rb") as fp:
                shape, dtype, fortran = read_npy_layout(fp)
                self.offset = fp.tell()
                size = fp.seek(0, io.SEEK_END)
        except ValueError as exc:
            raise ImageError(f"{quoted(self.path)}: not a readable .npy file ({exc})") from None
        # an array with at most one side longer than 1 is laid out alike in both orders
        self.fortran = fortran and sum(n > 1 for n in shape) > 1
        if len(shape) not in (2, 3) or dtype.hasobject or dtype.kind not in "biuf":
            raise ImageError(
                f"{quoted(self.path)}: a {dtype} array of shape {shape} cannot be streamed; "
                "expected a 2-D or 3-D array of numbers"
            )
        self.shape = shape
        self.stored_dtype = dtype
        if size - self.offset < int(np.prod(shape)) * dtype.itemsize:
            raise ImageError(f"{quoted(self.path)}: not a readable .npy file (it is truncated)")
        self.dtype = dtype.newbyteorder("=")
        self.row_bytes = int(np.prod(self.shape[1:])) * dtype.itemsize
        self.buffer_bytes = FORTRAN_BUFFER if self.fortran else 0
        """Memory the reader holds beside the rows it returns (see :func:`plan_band_rows`)."""

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        if self.fortran:
            return self._read_fortran(start, stop)
        out = np.empty((stop - start, *self.shape[1:]), dtype=self.stored_dtype)
        with open(self.path, "rb") as fp:
            fp.seek(self.offset + start * self.row_bytes)
            got = fp.readinto(out.view(np.uint8).reshape(-1).data)
        if got != out.nbytes:
            raise ImageError(f"{quoted(self.path)}: the file ends before row {stop} (truncated?)")
        return out if out.dtype.isnative else out.astype(self.dtype)

    def _read_fortran(self, start: int, stop: int) -> np.ndarray:
        """Rows of a Fortran-order file: a run of ``stop − start`` values from every column.

        Sample (h, w, c) sits at position h + H·(w + W·c) of the data; each column's run is
        read with one ``pread`` into a small buffer of a few columns, then put in place (a
        memory map would not do: the kernel maps whole blocks of every column around each
        touched page, so the resident set would grow to the file's size).
        """
        h, w = self.shape[:2]
        channels = self.shape[2] if len(self.shape) == 3 else 1
        rows = stop - start
        size = self.stored_dtype.itemsize
        out = np.empty((rows, w, channels), dtype=self.dtype)
        group = max(1, min(w, FORTRAN_BUFFER // max(1, rows * size)))
        buffer = np.empty((group, rows), dtype=self.stored_dtype)
        raw = buffer.view(np.uint8).reshape(-1).data
        run = rows * size
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for c in range(channels):
                for w0 in range(0, w, group):
                    w1 = min(w, w0 + group)
                    for col in range(w0, w1):
                        at = self.offset + ((c * w + col) * h + start) * size
                        piece = raw[(col - w0) * run : (col - w0 + 1) * run]
                        if os.preadv(fd, [piece], at) != run:
                            raise ImageError(
                                f"{quoted(self.path)}: the file ends inside the data (truncated?)"
                            )
                    out[:, w0:w1, c] = buffer[: w1 - w0].T
        finally:
            os.close(fd)
        return out.reshape((rows, *self.shape[1:]))


class NpyWriter:
    """A ``.npy`` file (a path, or an open binary file) written band by band with file writes.

    No memory map, so the resident set does not grow with the file.

    ``write_rows(start, rows)`` may be called in any order; the file holds zeros where nothing
    was written.
    """

    def __init__(self, path: Any, shape: tuple[int, ...], dtype: Any) -> None:
        self.path = Path(path) if isinstance(path, (str, os.PathLike)) else None
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        header: dict[str, Any] = {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": self.shape,
        }
        if self.path is None:  # an open binary file, left open
            self._fp, self._owned = path, False
        else:
            self._fp, self._owned = open(self.path, "wb"), True  # noqa: SIM115 (see close)
        np.lib.format.write_array_header_2_0(self._fp, header)
        self.offset = self._fp.tell()
        self.row_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        self._fp.truncate(self.offset + self.shape[0] * self.row_bytes)

    def write_rows(self, start: int, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.shape[1:] or start + rows.shape[0] > self.shape[0]:
            raise ValueError(f"rows of shape {rows.shape} at {start} do not fit {self.shape}")
        self._fp.seek(self.offset + start * self.row_bytes)
        self._fp.write(rows.view(np.uint8).reshape(-1).data)

    def close(self) -> None:
        if self._owned:
            self._fp.close()

    def __enter__(self) -> NpyWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
