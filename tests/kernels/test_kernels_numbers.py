"""Every number a kernel or an option is written with is read as ASCII decimal text.

``float`` and ``int`` also take other scripts' digits (``'١'``, fullwidth ``'１'``) and
underscores (``'1_0'``); the text-matrix reader refuses them (io.matrix.NUMBER), and so does
every other reader: a kernel's bias, libvips' .mat values, ImageMagick's kernel strings, a
built-in's arguments, --origin, --page and learn's --size.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from convtool.errors import KernelError
from convtool.io.matrix import read_number
from convtool.kernels.spec import parse_kernel

ODD = ["١", "１", "1_0", "²", "٣.5", "1e١"]


@pytest.mark.parametrize("text", ["1", "-2.5", " 3e-2 ", "+.5", "inf", "nan", "1."])
def test_read_number_takes_what_float_takes_in_ascii(text):
    value = read_number(text)
    assert value == float(text) or (np.isnan(value) and np.isnan(float(text)))


@pytest.mark.parametrize("text", ODD)
def test_read_number_refuses_other_digits_and_underscores(text):
    with pytest.raises(ValueError):
        read_number(text)


@pytest.mark.parametrize("odd", ODD)
@pytest.mark.parametrize(
    "template",
    [
        "box:{}",
        "gaussian:sigma={}",
        "3x3:1,2,3,4,5,6,7,8,{}",
        "Blur:0x{}",
        "1 {}; 2 3",
        "[[1, {}]]",
    ],
)
def test_kernel_specs_refuse_them(template, odd):
    with pytest.raises(KernelError):
        parse_kernel(template.format(odd))


@pytest.mark.parametrize(
    ("name", "text"),
    [("bias.txt", "# bias: {}\n1 2\n"), ("k.mat", "2 1\n{} 2\n"), ("k.mat", "2 1 {}\n1 2\n")],
)
def test_kernel_files_refuse_them(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text.format("１"), encoding="utf-8")
    with pytest.raises(KernelError, match="is not a number"):
        parse_kernel(f"@{path}")


@pytest.mark.parametrize(
    "args",
    [
        ["apply", "x.npy", "-k", "box:3", "--origin", "١,0", "-o", "y.npy"],
        ["apply", "x.npy", "-k", "box:3", "--page", "１", "-o", "y.npy"],
        ["apply", "x.npy", "-k", "box:١", "-o", "y.npy"],
        ["learn", "x.npy", "x.npy", "--size", "３", "-o", "k.txt"],
        ["learn", "x.npy", "x.npy", "--size", "9" * 5000, "-o", "k.txt"],
    ],
)
def test_the_command_line_refuses_them_in_one_line(tmp_path, args):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((8, 9)))
    done = subprocess.run(
        [sys.executable, "-m", "convtool", *args], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("convtool: error: "), done.stderr
    assert "bug" not in done.stderr
    assert not (tmp_path / "y.npy").exists() and not (tmp_path / "k.txt").exists()
