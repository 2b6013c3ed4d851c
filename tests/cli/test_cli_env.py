"""The process state a run sees comes from the Env handed to ``main``, nothing else: its
streams, whether they are terminals, --debug, the compile policy — and none of it outlives
the run."""

from __future__ import annotations

import io

import pytest

from convtool import compiled
from convtool.cli import Env, main
from convtool.errors import KernelError


def env(**changes: object) -> Env:
    fields: dict[str, object] = {
        "stdin": io.StringIO(),
        "stdout": io.StringIO(),
        "stderr": io.StringIO(),
        **changes,
    }
    return Env(**fields)  # type: ignore[arg-type]


def test_output_and_error_lines_go_to_the_envs_streams(capsys):
    given = env()
    assert main(["kernels", "sobel-x"], env=given) == 0
    assert given.stdout.getvalue().startswith("# kernel: sobel-x")
    assert main(["kernels", "sobelx"], env=given) == 1
    assert given.stderr.getvalue().startswith("convtool: error: unknown kernel 'sobelx'")
    assert capsys.readouterr() == ("", "")


def test_a_terminal_on_stdout_is_the_envs_word(tmp_path):
    """Standard output that the Env calls a terminal is refused for an image."""
    (tmp_path / "x.txt").write_text("0 1; 2 3\n")
    given = env(stdout_isatty=True)
    assert main(["apply", str(tmp_path / "x.txt"), "-k", "1"], env=given) == 2
    assert "standard output is a terminal" in given.stderr.getvalue()


def test_debug_in_the_env_shows_the_exception():
    with pytest.raises(KernelError):
        main(["kernels", "sobelx"], env=env(debug=True))


def test_the_compile_policy_holds_for_the_run_only(monkeypatch, tmp_path):
    """The command runs under the Env's policy; after it, the process's is as it was."""
    (tmp_path / "x.txt").write_text("0 1; 2 3\n")
    seen: list[str] = []
    monkeypatch.setattr(Env, "note", lambda self, message: seen.append(compiled.policy()))
    args = ["apply", str(tmp_path / "x.txt"), "-k", "laplacian", "--normalize"]
    assert main([*args, "-o", str(tmp_path / "y.txt")], env=env(compile_policy="background")) == 0
    assert seen == ["background"]  # the note on --normalize of a zero-sum kernel
    assert compiled.policy() == compiled.policy_from_environment()


def test_every_error_and_note_is_one_line_whatever_it_holds():
    """A name, or a library's message, with a newline cannot split a line nor forge one."""
    given = env()
    given.error("x.npy: header is\nconvtool: error: forged")
    given.note("a\r\u2028b")
    assert given.stderr.getvalue().splitlines() == [
        "convtool: error: x.npy: header is\\nconvtool: error: forged",
        "convtool: note: a\\r\\u2028b",
    ]
