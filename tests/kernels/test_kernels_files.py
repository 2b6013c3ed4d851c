"""Kernel files in and out: text, CSV, JSON and .npy files, and the text format written."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convtool
from convtool.kernels.files import format_kernel
from convtool.kernels.spec import load_kernel, parse_kernel
from convtool.kernels.value import Kernel


def test_kernel_files(tmp_path):
    (tmp_path / "k.txt").write_text("# a comment\n# bias: 0.25\n1 2 3\n4, 5, 6  # trailing\n")
    k = load_kernel(f"@{tmp_path / 'k.txt'}")
    np.testing.assert_array_equal(k.weights, [[1, 2, 3], [4, 5, 6]])
    assert k.bias == 0.25
    (tmp_path / "k.csv").write_text("1,-1\n")
    np.testing.assert_array_equal(parse_kernel(f"@{tmp_path / 'k.csv'}"), [[1, -1]])
    np.save(tmp_path / "k.npy", np.array([[0.5, 1.5]]))
    np.testing.assert_array_equal(parse_kernel(f"@{tmp_path / 'k.npy'}"), [[0.5, 1.5]])
    (tmp_path / "k.json").write_text(json.dumps({"kernel": [[1, 0], [0, -1]], "bias": -0.5}))
    k = load_kernel(f"@{tmp_path / 'k.json'}")
    np.testing.assert_array_equal(k.weights, [[1, 0], [0, -1]])
    assert k.bias == -0.5
    np.testing.assert_array_equal(parse_kernel(f"@{tmp_path / 'k.json'}"), [[1, 0], [0, -1]])


@pytest.mark.parametrize("spec", ["sobel-x", "gaussian:1.3,5", "log:1", "motion:7,30"])
def test_format_round_trips_through_file_and_loadtxt(tmp_path, spec):
    """``convtool kernels SPEC`` output is read back by -k @FILE and by numpy.loadtxt."""
    original = Kernel(parse_kernel(spec), spec, bias=0.125)
    path = tmp_path / "k.txt"
    path.write_text(format_kernel(original))
    back = load_kernel(f"@{path}")
    np.testing.assert_array_equal(back.weights, original.weights)
    assert back.bias == 0.125
    np.testing.assert_array_equal(np.loadtxt(path, ndmin=2), original.weights)


def test_refused_files(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(convtool.KernelError, match="not a text file"):
        parse_kernel(f"@{tmp_path / 'bad.txt'}")
    np.save(tmp_path / "k3.npy", np.zeros((2, 2, 2)))
    with pytest.raises(convtool.KernelError, match="3 dimensions"):
        parse_kernel(f"@{tmp_path / 'k3.npy'}")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(convtool.KernelError, match="npy"):
        parse_kernel(f"@{tmp_path / 'obj.npy'}")
    with pytest.raises(convtool.KernelError, match="is a directory"):
        parse_kernel(f"@{tmp_path}")
    (tmp_path / "k.json").write_text('{"weights": [[1]]}')
    with pytest.raises(convtool.KernelError, match="unknown key 'weights'"):
        parse_kernel(f"@{tmp_path / 'k.json'}")
    (tmp_path / "b.txt").write_text("# bias: nan\n1\n")
    with pytest.raises(convtool.KernelError, match="must be finite"):
        parse_kernel(f"@{tmp_path / 'b.txt'}")


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=3, max_size=3),
        min_size=1,
        max_size=4,
    )
)
def test_property_text_matrix_round_trip(rows):
    spec = "; ".join(" ".join(repr(v) for v in row) for row in rows)
    np.testing.assert_array_equal(parse_kernel(spec), np.array(rows))


def test_spec_split_over_lines_prints_as_a_file_that_reads_back(tmp_path):
    """A name holding a new line used to end the '# kernel:' comment and break the file."""
    k = load_kernel("gaussian:1,\nsize=3")
    text = format_kernel(k)
    assert text.splitlines()[:2] == ["# kernel: gaussian:1, size=3", "# size: 3x3"]
    (tmp_path / "g.txt").write_text(text)
    np.testing.assert_array_equal(parse_kernel(f"@{tmp_path / 'g.txt'}"), k.weights)
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "g.txt"), k.weights)


def test_semicolons_on_several_lines_of_a_file_are_refused(tmp_path):
    """A ';'-separated CSV (Excel in many locales) used to become a silent column."""
    (tmp_path / "k.csv").write_text("1;2;3\n4;5;6\n")
    with pytest.raises(convtool.KernelError, match=r"line 1 holds ';' but each line"):
        parse_kernel(f"@{tmp_path / 'k.csv'}")
    # one line in the inline form, and ';' inside comments, are fine
    (tmp_path / "one.txt").write_text("# rows; columns\n1 2; 3 4  # two rows; two columns\n")
    np.testing.assert_array_equal(parse_kernel(f"@{tmp_path / 'one.txt'}"), [[1, 2], [3, 4]])
    (tmp_path / "two.txt").write_text("# a; b\n1 2\n3 4 # c; d\n")
    np.testing.assert_array_equal(parse_kernel(f"@{tmp_path / 'two.txt'}"), [[1, 2], [3, 4]])
    # a ';' in a comment used to start a row: '# weights; 1 2' added the row [1, 2]
    (tmp_path / "c.txt").write_text("# weights; 1 2\n5 6\n")
    np.testing.assert_array_equal(parse_kernel(f"@{tmp_path / 'c.txt'}"), [[5, 6]])
    np.testing.assert_array_equal(parse_kernel("1 2 # then; 3 4"), [[1, 2]])


def test_utf16_kernel_files_are_read(tmp_path):
    """What Windows PowerShell's '>' writes: UTF-16 with a byte-order mark, CRLF."""
    for encoding in ("utf-16-le", "utf-16-be"):
        path = tmp_path / f"{encoding}.txt"
        bom = "\ufeff".encode(encoding)
        path.write_bytes(bom + "# bias: 0.5\r\n1 -1\r\n2 0.25\r\n".encode(encoding))
        k = load_kernel(f"@{path}")
        np.testing.assert_array_equal(k.weights, [[1, -1], [2, 0.25]])
        assert k.bias == 0.5


def test_a_tilde_after_the_at_sign_is_the_home_directory(tmp_path, monkeypatch):
    """No shell expands '~' in '-k @~/k.txt'; convtool does."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "k.txt").write_text("1 -1\n")
    np.testing.assert_array_equal(parse_kernel("@~/k.txt"), [[1, -1]])
    with pytest.raises(convtool.KernelError, match="no such file"):
        parse_kernel("@~nosuchuser-convtool/k.txt")


def test_a_numpy_bias_is_written_as_a_number_that_reads_back(tmp_path):
    """bias=np.float32(0.1) used to be written '# bias: np.float32(0.1)', a file -k refused."""
    k = Kernel(np.array([[1.0, -1.0]]), bias=np.float32(0.1))
    assert type(k.bias) is float and k.bias == float(np.float32(0.1))
    (tmp_path / "k.txt").write_text(format_kernel(k))
    assert load_kernel(f"@{tmp_path / 'k.txt'}").bias == k.bias


def test_a_kernel_file_named_without_the_at_sign_is_pointed_to_it(tmp_path, monkeypatch):
    """'-k ok.csv' used to say "'ok.csv' is not a number"; a file is named with '@'."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ok.csv").write_text("1 0\n0 1\n")
    (tmp_path / "mine").write_text("1 -1\n")
    for spec in ["ok.csv", "mine", "missing.npy", "k/x.json", "K.TXT"]:
        with pytest.raises(convtool.KernelError) as info:
            parse_kernel(spec)
        assert str(info.value) == (
            f"kernel {spec!r}: a kernel file is named with '@'; did you mean -k @{spec}?"
        )
    np.testing.assert_array_equal(parse_kernel("@ok.csv"), np.eye(2))
    # neither a file nor a file's name: the error is about the spec itself
    with pytest.raises(convtool.KernelError, match="'x' is not a number"):
        parse_kernel("1 x; 2 3.txt")
    with pytest.raises(convtool.KernelError, match="did you mean 'sobel-x'"):
        parse_kernel("sobelx")
