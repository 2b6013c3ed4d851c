"""A batch on a Dask cluster (``apply --scheduler``): one task per file, reported as the
local batch reports."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import loopback_cluster, random_image


@pytest.fixture
def cluster_address():
    """A two-worker loopback cluster for the command line; its scheduler's address."""
    with loopback_cluster() as cluster:
        yield cluster.scheduler_address


def test_apply_batch_on_a_cluster_with_one_broken_file(tmp_path, cluster_address, monkeypatch):
    """Each file is a task; the broken one is reported as in the local batch, exit code 1."""
    from PIL import Image
    from typer.testing import CliRunner

    from convtool.cli import app

    names = ["a.png", "b.png", "c.tif", "d.png"]
    for i, name in enumerate(names):
        if name == "b.png":
            (tmp_path / name).write_bytes(b"not a png at all")
        else:
            Image.fromarray(random_image((20 + i, 30, 3), np.uint8, seed=i)).save(tmp_path / name)
    monkeypatch.chdir(tmp_path)  # relative paths: made absolute before they are sent
    runner = CliRunner()
    common = ["apply", *names, "-k", "sobel-x", "--map", "abs"]
    local = runner.invoke(app, [*common, "--out-dir", "local"])
    remote = runner.invoke(app, [*common, "--out-dir", "remote", "--scheduler", cluster_address])
    assert local.exit_code == remote.exit_code == 1, remote.output
    assert sorted(p.name for p in (tmp_path / "remote").iterdir()) == ["a.png", "c.tif", "d.png"]
    for name in ["a.png", "c.tif", "d.png"]:
        with (
            Image.open(tmp_path / "local" / name) as x,
            Image.open(tmp_path / "remote" / name) as y,
        ):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert "convtool: error: b.png: not an image" in remote.stderr
    assert remote.stderr.splitlines()[-1] == "convtool: error: 1 of 4 inputs failed (b.png)"
    assert remote.stderr.splitlines()[-1] == local.stderr.splitlines()[-1]

    monkeypatch.setenv("CONVTOOL_SCHEDULER", cluster_address)
    again = runner.invoke(app, ["apply", "a.png", "d.png", "-k", "box", "--out-dir", "env"])
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in (tmp_path / "env").iterdir()) == ["a.png", "d.png"]


def test_scheduler_refuses_standard_input_and_output(tmp_path, cluster_address):
    from typer.testing import CliRunner

    from convtool.cli import app

    result = CliRunner().invoke(app, ["apply", "-", "-k", "box", "-o", "-", "--scheduler",
                                      cluster_address], input=b"0 1; 2 3")  # fmt: skip
    assert result.exit_code == 2 and "standard input and output cannot go there" in result.stderr
