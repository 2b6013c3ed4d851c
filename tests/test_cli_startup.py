"""What makes the command start fast: values coerced without pydantic, numba loaded without
scipy, the process ended at once by the console entry point — each doing what it replaces."""

from __future__ import annotations

import subprocess
import sys
from enum import Enum
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from typer.models import OptionInfo

from convtool.cli import coercion, main
from convtool.cli.options import BorderChoice, DepthChoice

RUN_ENTRY = "import sys; from convtool.cli import entry; sys.argv[0] = 'convtool'; entry()"


def _typer_coercion(annotation: object, value: object, multiple: bool, **info: object) -> object:
    """What Typer's own (pydantic) coercion makes of ``value``."""
    coercion = pytest.importorskip("typer._coercion")
    descriptor = coercion.resolve_type_descriptor(annotation, OptionInfo(**info))
    param = SimpleNamespace(multiple=multiple, nargs=1)
    return coercion.build_runtime_param(descriptor).coerce(value, param=param, ctx=None)


class Colour(str, Enum):
    red = "red"
    dark_red = "dark-red"


QUICK = [
    (str, "photo.png", {}),
    (str, "", {}),
    (str, "-", {}),
    (int, "95", {"min": 1, "max": 100}),
    (int, "1", {"min": 1, "max": 100}),
    (int, "100", {"min": 1, "max": 100}),
    (int, 95, {"min": 1, "max": 100}),
    (int, "-7", {}),
    (int, "-0", {}),
    (int, "123456789012345678901234567890", {}),
    (float, "1.5", {}),
    (float, "-2", {}),
    (float, "1e3", {}),
    (float, "0.25E-2", {}),
    (float, 0.0, {}),
    (float, "0", {}),
    (BorderChoice, "mirror", {}),
    (BorderChoice, BorderChoice.reflect, {}),
    (DepthChoice, "16", {}),
    (Colour, "dark-red", {}),
    (str, None, {}),
    (int, None, {"min": 1}),
]

DEFERRED = [
    (int, "0", {"min": 1, "max": 100}),
    (int, "101", {"min": 1, "max": 100}),
    (int, "007", {}),
    (int, "+5", {}),
    (int, " 5", {}),
    (int, "1.5", {}),
    (int, "abc", {}),
    (float, "1e999", {}),
    (float, "nan", {}),
    (float, ".5", {}),
    (float, "1,5", {}),
    (BorderChoice, "MIRROR", {}),
    (BorderChoice, "same", {}),
    (Path, "out", {}),
]


@pytest.mark.parametrize(("annotation", "value", "info"), QUICK)
def test_quick_values_are_typers(annotation, value, info):
    """A plain value is converted without pydantic to exactly what Typer's adapters give."""
    quick = coercion.quick_value(annotation, OptionInfo(**info), value, multiple=False, ctx=None)
    assert quick is not coercion.DEFER
    expected = _typer_coercion(annotation, value, False, **info)
    assert (type(quick), quick) == (type(expected), expected)


@pytest.mark.parametrize(("annotation", "value", "info"), DEFERRED)
def test_other_values_go_to_typer(annotation, value, info):
    """Invalid and unusual values are left to Typer, whose error messages stay as they are."""
    quick = coercion.quick_value(annotation, OptionInfo(**info), value, multiple=False, ctx=None)
    assert quick is coercion.DEFER


def test_quick_lists_of_strings():
    for value in (("a.png", "b.png"), ["-k"], ()):
        quick = coercion.quick_value(list[str], OptionInfo(), value, multiple=True, ctx=None)
        assert quick == _typer_coercion(list[str], value, True) == list(value)
    assert coercion.quick_value(list[str], OptionInfo(), None, multiple=True, ctx=None) == ()
    assert coercion.quick_value(list[int], OptionInfo(), ("1",), multiple=True, ctx=None) is (
        coercion.DEFER
    )


def test_invalid_option_keeps_typers_message(capsys):
    assert main(["apply", "x.png", "-k", "box:3", "-o", "y.png", "--quality", "0"]) == 2
    assert "Invalid value for '--quality'" in capsys.readouterr().err
    assert main(["apply", "x.png", "-k", "box:3", "-o", "y.png", "--border", "same"]) == 2
    assert "'same' is not one of" in capsys.readouterr().err


def _png(path: Path, seed: int = 3) -> Path:
    values = np.random.default_rng(seed).integers(0, 256, (23, 31, 3)).astype(np.uint8)
    Image.fromarray(values).save(path)
    return path


def test_apply_loads_neither_scipy_nor_pydantic(tmp_path):
    """A whole apply, with options of every kind, runs without scipy (numba's BLAS check) and
    pydantic (Typer's adapters); the result is the library's."""
    src = _png(tmp_path / "in.png")
    code = (
        "import sys\nfrom convtool.cli import main\n"
        f"args = ['apply', {str(src)!r}, '-k', 'sobel-x', '-k', '1 2; 3 4', '--map', 'abs', "
        "'--border', 'mirror', '--scale', '0.5', '--bias', '0.1', '--quality', '90', "
        "'--threads', '1', '--depth', '8', '--compress-level', '1', "
        f"'--out-dir', {str(tmp_path / 'out')!r}]\n"
        "assert main(args) == 0\n"
        "loaded = [m for m in ('scipy', 'pydantic') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    args = ["-k", "sobel-x", "-k", "1 2; 3 4", "--map", "abs", "--border", "mirror"]
    args += ["--scale", "0.5", "--bias", "0.1", "--threads", "1", "--compress-level", "1"]
    again = [sys.executable, "-m", "convtool", "apply", str(src), *args, "-o", "here.png"]
    assert subprocess.run(again, cwd=tmp_path).returncode == 0
    with Image.open(tmp_path / "out" / "in.png") as a, Image.open(tmp_path / "here.png") as b:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_entry_writes_everything_then_exits_with_mains_code(tmp_path):
    """The console entry point ends the process at once, after stdout is complete."""
    src = _png(tmp_path / "in.png")
    piped = subprocess.run(
        [sys.executable, "-c", RUN_ENTRY, "apply", str(src), "-k", "laplacian", "-o", "-"],
        capture_output=True,
    )
    assert piped.returncode == 0, piped.stderr
    assert main(["apply", str(src), "-k", "laplacian", "-o", str(tmp_path / "ref.png")]) == 0
    assert piped.stdout == (tmp_path / "ref.png").read_bytes()
    failed = subprocess.run(
        [sys.executable, "-c", RUN_ENTRY, "apply", "missing.png", "-k", "box:3", "-o", "x.png"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert (failed.returncode, failed.stdout) == (1, "")
    assert failed.stderr == "convtool: error: missing.png: no such file\n"
    usage = subprocess.run(
        [sys.executable, "-c", RUN_ENTRY, "apply", str(src), "-o", "x.png"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert usage.returncode == 2, usage.stderr
    assert not (tmp_path / "x.png").exists()


def test_batch_reports_in_the_order_of_the_inputs(tmp_path, capsys):
    """Read ahead and encoded beside the filtering, a batch still reports each input's notes
    and errors in order, and writes every result the single-file run writes."""
    rng = np.random.default_rng(9)
    Image.fromarray(rng.integers(0, 256, (21, 30, 3)).astype(np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(rng.integers(0, 2, (21, 30)).astype(bool)).save(tmp_path / "c.png")
    Image.fromarray(rng.integers(0, 256, (21, 30, 4)).astype(np.uint8)).save(tmp_path / "e.png")
    (tmp_path / "d.png").write_bytes(b"not an image")
    names = ["a.png", "b.png", "c.png", "d.png", "e.png"]
    args = ["-k", "sobel-x", "--map", "abs", "-o", str(tmp_path / "out" / "{stem}.jpg")]
    assert main(["apply", *(str(tmp_path / n) for n in names), *args]) == 1
    lines = capsys.readouterr().err.splitlines()
    sources = [str(tmp_path / n) for n in names]
    assert [line.split(": ")[1:3] for line in lines] == [
        ["error", sources[1]],
        ["note", sources[2]],
        ["error", sources[3]],
        ["note", sources[4]],
        ["error", f"2 of 5 inputs failed ({sources[1]}, {sources[3]})"],
    ], lines
    assert "1-bit" in lines[1] and "no alpha" in lines[3]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jpg", "c.jpg", "e.jpg"]
    for stem in ("a", "c", "e"):
        single = tmp_path / f"single-{stem}.jpg"
        assert main(["apply", str(tmp_path / f"{stem}.png"), *args[:-1], str(single)]) == 0
        assert single.read_bytes() == (tmp_path / "out" / f"{stem}.jpg").read_bytes()
