"""Batch planning without Typer: inputs expanded, output names filled in and checked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from convtool.batch.jobs import Job, Source, expand_inputs, expand_template, plan_jobs
from convtool.errors import ImageError, UsageError


def touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def test_a_directory_gives_its_images_in_name_order_a_folders_files_first(tmp_path):
    touch(tmp_path, "z.png", "B.JPG", "m.npy", "k.txt", "t.csv", "x.doc", "noext", ".h.png",
          "s/a.tif", "s/t/u.webp", ".git/o.png", "a/q.png")  # fmt: skip
    top = tmp_path / "d"
    os.symlink(tmp_path, top)  # the name given is kept in every path
    assert expand_inputs([str(top)]) == [
        Source(f"{top}/B.JPG", ".", True),
        Source(f"{top}/m.npy", ".", True),
        Source(f"{top}/z.png", ".", True),
    ]
    assert [(s.path, s.folder) for s in expand_inputs([str(top)], recursive=True)] == [
        (f"{top}/B.JPG", "."),
        (f"{top}/m.npy", "."),
        (f"{top}/z.png", "."),
        (f"{top}/a/q.png", "a"),
        (f"{top}/s/a.tif", "s"),
        (f"{top}/s/t/u.webp", "s/t"),
    ]
    # the output directory inside the tree is left out
    paths = [s.path for s in expand_inputs([str(top)], recursive=True, skip=top / "s")]
    assert paths == [f"{top}/B.JPG", f"{top}/m.npy", f"{top}/z.png", f"{top}/a/q.png"]


def test_named_files_keep_their_folder_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(tmp_path, "a/x.png", "a[1].png")
    assert expand_inputs(["x.png", "./a/x.png", "a/../a/x.png", "-", "a[1].png"]) == [
        Source("x.png", "."),
        Source("./a/x.png", "a"),
        Source("a/../a/x.png", "a"),
        Source("-", "."),
        Source("a[1].png", "."),  # a file of that exact name, not a pattern
    ]
    assert expand_inputs(["a/*"]) == [Source("a/x.png", "a")]
    assert expand_inputs(["*"]) == [Source("a[1].png", ".")]  # a matched directory is left out


@pytest.mark.parametrize(
    ("template", "source", "expected"),
    [
        ("{dir}/{name}", Source("s/t/x.png", "t", True), "t/x.png"),
        ("{dir}/{stem}.tif", Source("x.png"), "./x.tif"),
        ("e/{stem}-{ext}.png", Source("a/x.jpeg", "a"), "e/x-jpeg.png"),
        ("../up/{name}", Source("x.png"), "../up/x.png"),  # the template's own '..' is asked for
    ],
)
def test_template_placeholders(template, source, expected):
    assert expand_template(template, source) == expected


@pytest.mark.parametrize("folder", ["..", "../a", "a/../..", "/data"])
def test_a_placeholder_that_climbs_out_is_refused(folder):
    with pytest.raises(UsageError, match=f"{{dir}} of 'x.png' is '{folder}', which would put"):
        expand_template("out/{dir}/{name}", Source("x.png", folder))


def test_out_dir_keeps_a_directorys_folders_and_names_named_files_flat(tmp_path):
    touch(tmp_path, "d/x.png", "d/s/y.png", "n/z.png")
    out = tmp_path / "out"
    jobs = plan_jobs([str(tmp_path / "d"), str(tmp_path / "n" / "z.png")], None, out,
                     recursive=True)  # fmt: skip
    assert jobs == [
        Job(str(tmp_path / "d" / "x.png"), out / "x.png"),
        Job(str(tmp_path / "d" / "s" / "y.png"), out / "s" / "y.png"),
        Job(str(tmp_path / "n" / "z.png"), out / "z.png"),
    ]


def test_a_missing_directory_listing_is_an_error_not_a_silent_skip(tmp_path):
    touch(tmp_path, "d/x.png", "d/locked/y.png")
    (tmp_path / "d" / "locked").chmod(0)
    try:
        if os.access(tmp_path / "d" / "locked", os.R_OK):
            pytest.skip("running as a user who reads every folder")
        with pytest.raises(ImageError, match="locked: cannot be read"):
            expand_inputs([str(tmp_path / "d")], recursive=True)
    finally:
        (tmp_path / "d" / "locked").chmod(0o755)
