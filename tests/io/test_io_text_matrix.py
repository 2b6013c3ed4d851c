"""Text matrices: numpy's C reader for plain ones, the tokenizer for the rest, same numbers;
their size is known before they are parsed, so --memory holds for them too."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from convtool.errors import ImageError
from convtool.io.matrix import parse_matrix


def reference(text: str) -> np.ndarray:
    """A plain loop: comments cut, rows split at line ends (str.splitlines) and ';', entries
    at blanks and commas."""
    rows = []
    for line in text.splitlines():
        for row in line.split("#", 1)[0].split(";"):
            entries = [float(e) for e in re.split(r"[\s,]+", row) if e]
            if entries:
                rows.append(entries)
    return np.array(rows, dtype=np.float64)


def matrix_text(data: np.ndarray, sep: str, newline: str = "\n") -> str:
    return newline.join(sep.join(repr(float(v)) for v in row) for row in data) + newline


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (9, 1), (13, 17)])
@pytest.mark.parametrize("sep", [" ", ",", ", ", "\t", " ,  "])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_plain_matrices_read_exactly(shape, sep, newline):
    data = np.random.default_rng(sum(shape)).normal(size=shape) * 10.0 ** np.arange(shape[1])
    text = matrix_text(data, sep, newline)
    np.testing.assert_array_equal(parse_matrix(text, "m.txt"), data)
    np.testing.assert_array_equal(parse_matrix(text, "m.txt"), reference(text))


@pytest.mark.parametrize(
    "text",
    [
        "# a header\n1 2 3\n\n4 5 6 # a note\n",
        "1 2; 3 4",  # rows on one line
        "nan inf -inf\n1e5 .5 1.\n",
        "+1 -2\n0001 1E-400\n",
        "1 2\r3 4\n",  # a lone carriage return ends a line
        "1,,2,\n3,4,5\n",  # ragged once commas are blanks: 2 then 3 entries
    ],
)
def test_every_writing_gives_the_reference(text):
    try:
        expected = reference(text)
    except ValueError:
        expected = None
    if expected is None or len({len(r) for r in expected.tolist()}) != 1:
        with pytest.raises(ImageError):
            parse_matrix(text, "m.txt")
        return
    got = parse_matrix(text, "m.txt")
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 2\n3\n", "ragged rows"),
        ("1 2\n3 x\n", "not a number|not a matrix"),
        ("1 2\n3 ١\n", "not a number|not a matrix"),
        ("1 2\n3 1_0\n", "not a number|not a matrix"),
        ("# only a comment\n", "no numbers"),
    ],
)
def test_what_numpy_refuses_is_reported_by_the_tokenizer(text, message):
    with pytest.raises(ImageError, match=message):
        parse_matrix(text, "m.txt")


def test_max_pixels_holds_before_parsing():
    with pytest.raises(ImageError, match="max-pixels"):
        parse_matrix("1 2 3\n" * 40, "m.txt", max_pixels=100)


def run(args, cwd, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "convtool", *args], cwd=cwd, input=stdin, capture_output=True
    )


def test_memory_holds_for_text_matrices(tmp_path):
    """A text matrix too large for --memory is refused from its size, before it is parsed,
    whether it is a file or comes on standard input; within the budget it is filtered."""
    data = np.random.default_rng(0).random((600, 700))
    text = matrix_text(data, " ").encode()
    (tmp_path / "m.txt").write_bytes(text)
    for args, stdin in (
        (["apply", "m.txt", "-k", "box", "-o", "out.npy", "--memory", "4M"], None),
        (["apply", "-", "-k", "box", "-o", "out.npy", "--memory", "4M"], text),
    ):
        done = run(args, tmp_path, stdin)
        assert done.returncode == 1
        lines = done.stderr.decode().splitlines()
        assert len(lines) == 1 and "700x600 TXT" in lines[0] and "--memory" in lines[0], lines
        assert not (tmp_path / "out.npy").exists()
    done = run(["apply", "m.txt", "-k", "box", "-o", "out.npy", "--memory", "64M"], tmp_path)
    assert done.returncode == 0, done.stderr
    from scipy import ndimage

    expected = ndimage.correlate(data, np.full((3, 3), 1 / 9), mode="reflect")
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=0, atol=1e-12)
