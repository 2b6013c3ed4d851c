"""The batch pipeline driven directly, without the command line: jobs planned, read, filtered,
encoded and written, each input's notes and failure handed to the caller in order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage as ndi
from PIL import Image

from convtool.batch.jobs import Job, plan_jobs
from convtool.batch.pipeline import Notes, Settings, collector, run_batch, run_job, run_one
from convtool.choices import DEFAULT_COMPRESS_LEVEL, DEFAULT_MAX_PIXELS
from convtool.errors import ImageError
from convtool.filtering.chain import Recipe
from convtool.kernels.spec import load_kernel

from conftest import assert_close, random_image

SPEC = "1 2 4; 8 16 32; 64 128 256"
POWERS = np.array([[1, 2, 4], [8, 16, 32], [64, 128, 256]], dtype=float)
"""An asymmetric kernel with distinct entries: a flip or a transpose cannot hide."""


def settings(border: str = "reflect", **changes: object) -> Settings:
    recipe = Recipe(kernels=(load_kernel(SPEC),), border=border)
    fields: dict[str, object] = {
        "recipe": recipe,
        "stdout_format": None,
        "depth": None,
        "map": None,
        "gray": False,
        "quality": None,
        "compress_level": DEFAULT_COMPRESS_LEVEL,
        "max_pixels": DEFAULT_MAX_PIXELS,
        **changes,
    }
    return Settings(**fields)  # type: ignore[arg-type]


def matrices(folder: Path, shapes: dict[str, tuple[int, int]]) -> dict[str, np.ndarray]:
    folder.mkdir()
    arrays = {}
    for seed, (name, shape) in enumerate(shapes.items()):
        arrays[name] = random_image(shape, np.float64, seed=seed)
        np.save(folder / name, arrays[name])
    return arrays


@pytest.mark.parametrize("border", ["reflect", "mirror", "nearest", "wrap", "constant"])
def test_a_batch_with_one_bad_input_writes_the_others_as_scipy_filters_them(tmp_path, border):
    """Every good input is written, equal to scipy.ndimage.correlate; the bad one fails
    alone, reported as an ImageError, in the order of the inputs."""
    arrays = matrices(tmp_path / "in", {"a.npy": (9, 13), "c.npy": (2, 5), "d.npy": (17, 4)})
    (tmp_path / "in" / "b.npy").write_bytes(b"not a matrix")
    names = ["a.npy", "b.npy", "c.npy", "d.npy"]
    jobs = plan_jobs([str(tmp_path / "in" / n) for n in names], None, tmp_path / "out")
    notes: list[tuple[str, str]] = []
    failures: list[tuple[str, Exception | str]] = []
    done: list[None] = []

    failed = run_batch(
        jobs,
        settings(border),
        notes=lambda source, message: notes.append((source, message)),
        failed=lambda source, error: failures.append((source, error)),
        advance=lambda: done.append(None),
    )

    bad = str(tmp_path / "in" / "b.npy")
    assert failed == [bad] and [source for source, _ in failures] == [bad]
    assert isinstance(failures[0][1], ImageError), failures
    assert len(done) == 4 and notes == []
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.npy", "c.npy", "d.npy"]
    for name, x in arrays.items():
        expected = ndi.correlate(x, POWERS, mode=border, cval=0.0)
        assert_close(np.load(tmp_path / "out" / name), expected, POWERS, x)


def test_one_job_and_a_dask_task_write_the_same_bytes(tmp_path):
    """``run_job`` (a Dask task's work) is the local run of one file: same bytes, notes kept."""
    Image.fromarray(random_image((11, 14, 3), np.uint8, seed=2)).save(tmp_path / "x.png")
    shown: list[str] = []
    run_one(Job(str(tmp_path / "x.png"), tmp_path / "one.png"), settings(), Notes(shown.append))
    messages, error = run_job(Job(str(tmp_path / "x.png"), tmp_path / "task.png"), settings())
    assert error is None and messages == shown
    assert (tmp_path / "one.png").read_bytes() == (tmp_path / "task.png").read_bytes()


def test_a_dask_task_returns_its_error_as_text(tmp_path):
    messages, error = run_job(Job(str(tmp_path / "missing.npy"), tmp_path / "o.npy"), settings())
    assert messages == [] and error == f"{tmp_path / 'missing.npy'}: no such file"


def test_notes_in_a_batch_name_their_input_once():
    shown: list[str] = []
    notes = Notes(shown.append, batch=True)
    notes("a.png", "clipped")
    notes("a.png", "clipped")
    notes("b.png", "b.png: clipped")
    assert shown == ["a.png: clipped", "b.png: clipped"]
    kept: list[str] = []
    collector(kept)("a.png", "clipped")
    assert kept == ["clipped"]
