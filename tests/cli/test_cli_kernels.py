"""``convtool kernels`` and the command's frame: version, help, errors as one line."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import convtool
from convtool.cli import app, main
from convtool.kernels.builtins import BUILTINS
from convtool.kernels.spec import load_kernel

runner = CliRunner()


def test_lists_every_builtin_with_a_description():
    result = runner.invoke(app, ["kernels"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(BUILTINS)
    assert all(len(line.split()) > 1 for line in lines)


def test_prints_a_kernel_that_reads_back(tmp_path):
    result = runner.invoke(app, ["kernels", "gaussian:sigma=1,size=5"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "g.txt"
    path.write_text(result.output)
    np.testing.assert_array_equal(
        load_kernel(f"@{path}").weights, load_kernel("gaussian:sigma=1,size=5").weights
    )
    sobel = runner.invoke(app, ["kernels", "sobel-x"]).output.splitlines()
    assert sobel[-3:] == ["-1 0 1", "-2 0 2", "-1 0 1"]


def test_multi_line_spec_prints_a_file_that_reads_back(tmp_path):
    """A spec typed over two lines used to print '# kernel: gaussian:1,' then 'size=3'."""
    result = runner.invoke(app, ["kernels", "gaussian:1,\nsize=3"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "# kernel: gaussian:1, size=3"
    path = tmp_path / "g.txt"
    path.write_text(result.output)
    np.testing.assert_array_equal(
        load_kernel(f"@{path}").weights, load_kernel("gaussian:1,size=3").weights
    )


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("sob", ["sobel-x", "sobel-y"]), ("lap", ["laplacian", "laplacian8"]), ("", list(BUILTINS))],
)
def test_shell_completes_builtin_names_after_kernels(typed, expected):
    assert shell_completion(f"convtool kernels {typed}") == expected


def shell_completion(words: str) -> list[str]:
    """What bash completion offers for the last of ``words`` (the command run as bash runs it)."""
    env = {
        "_CONVTOOL_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    code = "from convtool.cli import main; raise SystemExit(main())"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_unknown_kernel_is_one_line_with_a_suggestion(capsys):
    assert main(["kernels", "sobelx"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "convtool: error: unknown kernel 'sobelx'; did you mean 'sobel-x' or 'sobel-y' or "
        "'roberts-x'? 'convtool kernels' lists the built-ins, and a matrix is written like "
        "'1 0 -1; 2 0 -2; 1 0 -1'\n"
    )


def test_usage_error_is_one_line_exit_2(capsys):
    assert main(["kernels", "--bogus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convtool: error: ") and err.count("\n") == 1


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("convtool 0.")


def test_help_and_kernels_do_not_import_numba():
    """Start-up stays fast: listing kernels and --help never load numba."""
    code = (
        "import sys\nfrom convtool.cli import main\n"
        "main(['kernels']); main(['--help']); main(['kernels', 'box:3'])\n"
        "assert 'numba' not in sys.modules, 'numba imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_help_loads_neither_numpy_nor_pillow():
    """``convtool --help`` and ``convtool apply --help`` load no numpy, Pillow or numba: the
    commands import them when they run, and ``import convtool`` loads its API lazily."""
    code = (
        "import sys\nfrom convtool.cli import main\n"
        "main(['--help']); main(['apply', '--help']); main(['learn', '--help'])\n"
        "heavy = [m for m in ('numpy', 'PIL', 'numba', 'scipy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_lazy_api_names():
    """The API names load on first use and stay what they are: convtool.correlate is the
    function even after the submodule of the same name was imported by the core."""
    code = (
        "import sys, convtool\n"
        "assert 'numpy' not in sys.modules\n"
        "import convtool.filtering.chain\n"
        "from convtool import BORDERS, Kernel, correlate, learn_kernel\n"
        "assert callable(convtool.correlate) and convtool.correlate is correlate\n"
        "assert correlate.__module__ == 'convtool.core.correlate'\n"
        "assert set(convtool.__all__) <= set(dir(convtool))\n"
        "for name in convtool.__all__:\n"
        "    if name != 'correlate_dask':\n"
        "        getattr(convtool, name)\n"
        "assert 'dask' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    with pytest.raises(AttributeError, match="no attribute 'corelate'"):
        convtool.corelate  # noqa: B018


def test_defaults_are_the_libraries():
    """The numbers --help shows (from convtool.choices) are the ones the library uses."""
    from convtool import choices
    from convtool.io import read
    from convtool.learn import fit

    assert fit.DEFAULT_EPOCHS is choices.DEFAULT_EPOCHS
    assert read.DEFAULT_MAX_PIXELS is choices.DEFAULT_MAX_PIXELS


def test_module_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "convtool", "kernels", "edge"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "1 -1"


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("convtool apply in.png -k sob", ["sobel-x", "sobel-y"]),
        ("convtool apply in.png -k box -k gau", ["gaussian"]),
        ("convtool apply in.png --kernel em", ["emboss"]),
    ],
)
def test_shell_completes_builtin_names_after_k(words, expected):
    assert shell_completion(words) == expected
