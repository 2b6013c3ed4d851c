"""A batch on a Dask cluster when the cluster fails (issue 16, items 8, 9 and 15): a scheduler
that never answers, addresses that are no scheduler's, workers killed in the middle.

A real cluster, started the way users start one (``dask scheduler`` and ``dask worker``
processes on 127.0.0.1), and ``python -m convtool`` run as a script runs it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("distributed")

CONVTOOL = [sys.executable, "-m", "convtool"]
DASK = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
WORKER = [sys.executable, "-m", "distributed.cli.dask_worker"]
TIMEOUT = 300
ERROR = "convtool: error: "
QUICK = {"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "3s"}
"""Dask's connect timeout, which bounds every wait of ``--scheduler``, short for the tests."""


def environment(**extra: str) -> dict[str, str]:
    # the numpy twins (the same bytes as the compiled core) on every process: no process
    # waits for numba to compile
    return {**os.environ, "CONVTOOL_COMPILE": "background", **QUICK, **extra}


def convtool(cwd: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CONVTOOL, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT, env=environment(**extra))  # fmt: skip


def one_error(done: subprocess.CompletedProcess[str], code: int) -> str:
    assert done.returncode == code, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR), done.stderr
    return lines[0]


def pngs(folder: Path, count: int, side: int = 48) -> list[str]:
    """``count`` small RGB PNGs, each different; their names."""
    names = []
    for i in range(count):
        pixels = np.random.default_rng(i).integers(0, 256, (side, side + i % 5, 3), np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        name = f"p{i:03d}.png"
        (folder / name).write_bytes(buffer.getvalue())
        names.append(name)
    return names


# Addresses and a scheduler that does not answer ------------------------------------------------


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """A TCP listener on 127.0.0.1 that accepts connections and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


def test_a_scheduler_that_accepts_and_never_answers_is_one_error_line(tmp_path, silent_listener):
    """It hung for ever: Dask's handshake has no timeout of its own."""
    names = pngs(tmp_path, 2)
    line = one_error(convtool(tmp_path, "apply", *names, "-k", "box", "--out-dir", "out",
                              "--scheduler", silent_listener), code=1)  # fmt: skip
    assert line == (
        f"{ERROR}the Dask scheduler at {silent_listener!r} did not answer within 3 s (Dask's "
        "distributed.comm.timeouts.connect); is a Dask scheduler listening there?"
    )


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("tcp://127.0.0.1:99999", "'99999' is not a port (1 to 65535)"),
        ("127.0.0.1:0x50", "'0x50' is not a port (1 to 65535)"),
        ("inproc://x", "inproc:// addresses live inside one Python process"),
        ("tls://127.0.0.1:8786", "tls:// needs Dask's TLS settings for the client"),
        ("ucx://127.0.0.1:8786", "unknown protocol ucx://"),
        ("tcp://:8786", "no host"),
    ],
)
def test_an_address_that_is_no_schedulers_is_refused_at_once(tmp_path, address, says):
    """':99999' waited 20 s for a connection; tls:// and inproc:// said 'this is a bug'."""
    names = pngs(tmp_path, 2)
    line = one_error(convtool(tmp_path, "apply", *names, "-k", "box", "--out-dir", "out",
                              "--scheduler", address), code=2)  # fmt: skip
    assert line.startswith(f"{ERROR}--scheduler {address!r}: ") and says in line, line
    assert not (tmp_path / "out").exists()


# A real cluster whose workers die ------------------------------------------------------------


class Cluster:
    """``dask scheduler`` and two ``dask worker`` processes (no nanny: a killed worker stays
    dead) on 127.0.0.1; everything stopped on leaving."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.processes: list[subprocess.Popen[bytes]] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        self.address = ""

    def _start(self, command: list[str], log: str) -> subprocess.Popen[bytes]:
        with open(self.folder / log, "wb") as out:
            proc = subprocess.Popen(command, cwd=self.folder, stdout=out, stderr=out,
                                    env=environment())  # fmt: skip
        self.processes.append(proc)
        return proc

    def __enter__(self) -> Cluster:
        info = self.folder / "scheduler.json"
        self._start([*DASK, "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(info)], "scheduler.log")  # fmt: skip
        deadline = time.monotonic() + TIMEOUT
        while not info.exists() or not info.read_text().strip().endswith("}"):
            assert time.monotonic() < deadline, (self.folder / "scheduler.log").read_text()
            time.sleep(0.05)
        self.address = json.loads(info.read_text())["address"]
        for i in range(2):
            self.workers.append(self._start([*WORKER, self.address, "--nthreads", "1",
                                             "--no-nanny", "--no-dashboard", "--host",
                                             "127.0.0.1"], f"worker{i}.log"))  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)


def _batch_killing(cwd: Path, names: list[str], address: str, victims: list[subprocess.Popen]):
    """Run the batch on the cluster at ``address``; once a fifth of the results are written,
    SIGKILL the ``victims``. The exit code, stderr, and how many results were there."""
    out = cwd / "remote"
    proc = subprocess.Popen(
        [*CONVTOOL, "apply", *names, "-k", "gaussian:2", "--out-dir", "remote",
         "--scheduler", address],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + TIMEOUT
        while not out.is_dir() or len(os.listdir(out)) < len(names) // 5:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the batch never got going"
            time.sleep(0.005)
        written = len(os.listdir(out))
        for victim in victims:
            victim.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
        proc.wait(TIMEOUT)
    return proc.returncode, stderr, written


def test_a_worker_killed_mid_batch_loses_nothing(tmp_path):
    """100 files, one broken; a worker SIGKILLed when a fifth are written: its tasks run
    again on the other; every output is whole and byte for byte the local run's, nothing
    partial or temporary is left, and exit code 1 names the broken file alone."""
    names = pngs(tmp_path, 99)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    names.insert(50, "broken.png")
    local = convtool(tmp_path, "apply", *names, "-k", "gaussian:2", "--out-dir", "local")
    assert local.returncode == 1, local.stderr
    with Cluster(tmp_path) as cluster:
        code, stderr, written = _batch_killing(tmp_path, names, cluster.address,
                                               cluster.workers[:1])  # fmt: skip
        assert cluster.workers[0].poll() == -signal.SIGKILL
    assert written < len(names) - 1, "the batch was over before the kill"
    assert code == 1, stderr
    assert stderr.splitlines()[-1] == f"{ERROR}1 of 100 inputs failed (broken.png)", stderr
    assert [line for line in stderr.splitlines() if "broken.png: " in line] == [
        line for line in local.stderr.splitlines() if "broken.png: " in line
    ]
    remote = sorted(os.listdir(tmp_path / "remote"))
    assert remote == sorted(os.listdir(tmp_path / "local")) == sorted(pngs_of(names))
    for name in remote:
        assert (tmp_path / "remote" / name).read_bytes() == (
            tmp_path / "local" / name
        ).read_bytes(), name


def pngs_of(names: list[str]) -> list[str]:
    return [name for name in names if name != "broken.png"]


def test_every_worker_killed_mid_batch_ends_the_run_with_one_line(tmp_path):
    """With no worker left the batch waited for ever; now Dask's connect timeout bounds the
    wait: one error line, exit 1, and the outputs written are whole."""
    names = pngs(tmp_path, 100)
    with Cluster(tmp_path) as cluster:
        code, stderr, written = _batch_killing(tmp_path, names, cluster.address,
                                               cluster.workers)  # fmt: skip
    assert written < len(names), "the batch was over before the kill"
    if code == 0:
        pytest.skip("every task had finished when the workers died")
    assert code == 1, stderr
    assert stderr.splitlines()[-1].startswith(
        f"{ERROR}the Dask cluster at {cluster.address!r} has no worker left; "
    ), stderr
    local = convtool(tmp_path, "apply", *names, "-k", "gaussian:2", "--out-dir", "local")
    assert local.returncode == 0, local.stderr
    remote = sorted(os.listdir(tmp_path / "remote"))
    assert len(remote) < len(names)
    for name in remote:
        assert (tmp_path / "remote" / name).read_bytes() == (
            tmp_path / "local" / name
        ).read_bytes(), name


def test_the_scheduler_killed_mid_batch_ends_the_run_with_one_line(tmp_path):
    """It printed Dask's log with a traceback, per-file 'CommClosedError' lines and an
    'unexpected FuturesCancelledError ... this is a bug' line."""
    names = pngs(tmp_path, 100)
    with Cluster(tmp_path) as cluster:
        code, stderr, written = _batch_killing(tmp_path, names, cluster.address,
                                               cluster.processes[:1])  # fmt: skip
    assert written < len(names), "the batch was over before the kill"
    if code == 0:
        pytest.skip("every result had come back when the scheduler died")
    assert code == 1, stderr
    line = stderr.splitlines()[-1]
    assert stderr.splitlines() == [line] and line.startswith(
        f"{ERROR}lost the Dask scheduler at {cluster.address!r} ("
    ), stderr
    assert "files not done (every file written is whole)" in line
    local = convtool(tmp_path, "apply", *names, "-k", "gaussian:2", "--out-dir", "local")
    assert local.returncode == 0, local.stderr
    for name in os.listdir(tmp_path / "remote"):
        assert (tmp_path / "remote" / name).read_bytes() == (
            tmp_path / "local" / name
        ).read_bytes(), name
