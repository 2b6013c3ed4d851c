"""Make the picture gallery of the docs and the README with ``convtool apply`` itself.

    python3 docs/gallery.py                 # docs/gallery/*.png from sample_images/
    python3 docs/gallery.py --markdown      # ... and print the gallery tables

Each picture is what one real ``convtool`` command wrote (run in-process through
``convtool.cli.main``, the console entry point): every built-in kernel of
``convtool.kernels.BUILTINS`` on the cameraman, and the README's recipes on the coffee cup
and a checkerboard. The inputs are copies of ``sample_images/`` photographs shrunk to
``--width`` pixels (160 by default) with Pillow, so that each committed PNG is a small
thumbnail and still exactly convtool's output: the commands run in ``docs/gallery/`` on those
copies, as the tables show them.

A built-in without an entry in ``BUILTIN_OPTIONS`` is an error, so the gallery cannot fall
behind the kernel list (``tests/test_docs.py`` runs this script on tiny images).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFilter

from convtool.cli import main as convtool_main
from convtool.kernels.builtins import BUILTINS

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_images"
GALLERY = ROOT / "docs" / "gallery"
# Where the pictures are, seen from README.md and from the pages in docs/.
README_DIR = "docs/gallery"
PAGES_DIR = "gallery"
# The few pictures README.md shows, by entry name (the rest are on the docs pages).
HIGHLIGHTS = ("sobel-x", "coffee-relief", "camera-blur-laplacian", "coffee-learned")

# The photographs the gallery starts from: name in the gallery -> file in sample_images/.
PHOTOS = {"camera.png": "camera.png", "coffee.png": "coffee.png", "chelsea.png": "chelsea.png"}
# Synthetic samples copied as they are (already small).
SYNTHETIC = ("checkerboard.png",)

# The options for every built-in: a spec, and what makes its result visible. Derivatives are
# signed: ``--map abs`` shows rising and falling edges alike, ``--map rescale`` shows the sign
# (mid-grey is 0); ``--scale`` brings small differences (``edge``, ``roberts``) up, and the
# Scharr weights, 4× Sobel's, down.
BUILTIN_OPTIONS: dict[str, tuple[str, ...]] = {
    "identity": ("-k", "identity"),
    "edge": ("-k", "edge", "--map", "abs", "--scale", "4"),
    "edge-x": ("-k", "edge-x", "--map", "rescale"),
    "edge-y": ("-k", "edge-y", "--map", "abs", "--scale", "4"),
    "sobel-x": ("-k", "sobel-x", "--map", "abs"),
    "sobel-y": ("-k", "sobel-y", "--map", "rescale"),
    "scharr-x": ("-k", "scharr-x", "--scale", "0.25", "--map", "abs"),
    "scharr-y": ("-k", "scharr-y", "--scale", "0.25", "--map", "abs"),
    "prewitt-x": ("-k", "prewitt-x", "--map", "abs"),
    "prewitt-y": ("-k", "prewitt-y", "--map", "abs"),
    "roberts-x": ("-k", "roberts-x", "--map", "abs", "--scale", "4"),
    "roberts-y": ("-k", "roberts-y", "--map", "abs", "--scale", "4"),
    "laplacian": ("-k", "laplacian", "--map", "abs", "--scale", "2"),
    "laplacian8": ("-k", "laplacian8", "--map", "abs"),
    "sharpen": ("-k", "sharpen"),
    "emboss": ("-k", "emboss"),
    "box": ("-k", "box:5"),
    "gaussian": ("-k", "gaussian:2"),
    "log": ("-k", "log:sigma=2", "--map", "rescale"),
    "motion": ("-k", "motion:length=15,angle=30"),
    "diff": ("-k", "diff:order=2", "--map", "abs", "--scale", "2"),
    "directional": ("-k", "directional:angle=45", "--map", "abs"),
    "unsharp": ("-k", "unsharp:sigma=2,amount=1.5"),
}


@dataclass(frozen=True)
class Entry:
    """One gallery picture: ``convtool apply INPUT OPTIONS -o NAME.png`` (after ``setup``), or,
    without options, the input itself."""

    name: str
    input: str
    options: tuple[str, ...]
    caption: str
    setup: tuple[tuple[str, ...], ...] = ()

    @property
    def output(self) -> str:
        return f"{self.name}.png" if self.options else self.input

    def commands(self) -> list[tuple[str, ...]]:
        """The convtool commands (argv without ``convtool``) that make this picture, in order."""
        if not self.options:
            return []
        return [*self.setup, ("apply", self.input, *self.options, "-o", self.output)]


def builtin_entries() -> list[Entry]:
    """One entry per built-in kernel, in the registry's order, on the cameraman."""
    missing = [name for name in BUILTINS if name not in BUILTIN_OPTIONS]
    if missing:
        raise SystemExit(
            f"docs/gallery.py: no gallery entry for the built-in kernel(s) {', '.join(missing)}; "
            "add them to BUILTIN_OPTIONS"
        )
    stale = [name for name in BUILTIN_OPTIONS if name not in BUILTINS]
    if stale:
        raise SystemExit(
            f"docs/gallery.py: BUILTIN_OPTIONS names {', '.join(stale)}, not a built-in kernel "
            "(any more); remove them"
        )
    entries = [Entry("camera", "camera.png", (), "the input")]
    entries += [Entry(name, "camera.png", BUILTIN_OPTIONS[name], name) for name in BUILTINS]
    return entries


def recipe_entries() -> list[Entry]:
    """The recipes (docs/usage.md) that end in a picture, and what ``--map`` does to an edge map."""
    relief = "-2 -1 0; -1 0 1; 0 1 2"
    return [
        Entry("coffee", "coffee.png", (), "the input"),
        Entry(
            "coffee-emboss-bias",
            "coffee.png",
            ("-k", "emboss", "--bias", "0.5", "--gray"),
            "built-in emboss (sums to 1) + bias 0.5: washed out",
        ),
        Entry(
            "coffee-relief",
            "coffee.png",
            ("-k", relief, "--bias", "0.5", "--gray"),
            "zero-sum emboss + bias 0.5: grey relief",
        ),
        Entry(
            "coffee-unsharp",
            "coffee.png",
            ("-k", "unsharp:sigma=2,amount=1.5"),
            "unsharp masking",
        ),
        Entry(
            "coffee-sobel-x-abs",
            "coffee.png",
            ("-k", "sobel-x", "--map", "abs"),
            "edge magnitude along x, in colour",
        ),
        Entry(
            "camera-blur-laplacian",
            "camera.png",
            ("-k", "gaussian:2", "-k", "laplacian", "--map", "rescale"),
            "blur, then Laplacian",
        ),
        Entry(
            "camera-pillow", "camera-pillow.png", (), "made by Pillow's EMBOSS (the unknown tool)"
        ),
        Entry(
            "coffee-learned",
            "coffee.png",
            ("-k", "@found.txt"),
            "the kernel learned from camera-pillow.png, applied to another photo",
            setup=(
                tuple(
                    shlex.split("learn camera.png camera-pillow.png --size 3 --bias -o found.txt")
                ),
            ),
        ),
        Entry("checkerboard", "checkerboard.png", (), "the input"),
        Entry(
            "checkerboard-clip",
            "checkerboard.png",
            ("-k", "sobel-x", "--scale", "0.25"),
            "`--map clip` (the default): falling edges lost",
        ),
        Entry(
            "checkerboard-abs",
            "checkerboard.png",
            ("-k", "sobel-x", "--scale", "0.25", "--map", "abs"),
            "`--map abs`: both edges",
        ),
        Entry(
            "checkerboard-rescale",
            "checkerboard.png",
            ("-k", "sobel-x", "--map", "rescale"),
            "`--map rescale`: the sign, 0 as mid-grey",
        ),
    ]


SEPIA = "[[[[0.393]], [[0.769]], [[0.189]]], [[[0.349]], [[0.686]], [[0.168]]], " + (
    "[[[0.272]], [[0.534]], [[0.131]]]]"
)
"""The sepia tone as a 3→3 layer of 1×1 kernels: K[o, i] is the weight of input i in output o."""

LUMA = "[[[[0.299]], [[0.587]], [[0.114]]]]"
"""Rec. 601 luminance as a 3→1 layer of 1×1 kernels."""

TINT = "[[[[1.0]]], [[[0.8]]], [[[0.55]]]]"
"""A warm tint as a 1→3 layer: one grey channel in, red, green and blue out."""


COLOUR_MATRIX = (0.2, 0.5, 0.3, 0, 0.6, 0.4, 0.1, 0, 0.1, 0.3, 0.5, 40)
"""The unknown tool's colour mixing (Pillow's ``convert("RGB", matrix)``: each output a sum of
the input's red, green and blue plus an offset in grey levels), then a 3×3 box blur."""


def channel_entries() -> list[Entry]:
    """Per-channel kernels and layers (docs/channels.md): channel counts in and out, and a
    layer learned from one photograph applied to another."""
    return [
        Entry(
            "coffee-sepia-blur",
            "coffee.png",
            ("-k", "@sepia-blur.txt"),
            "3→3: the sepia layer composed with a 5×5 blur, one 3×3×5×5 layer",
            setup=(("kernels", SEPIA, "box:5", "-o", "sepia-blur.txt"),),
        ),
        Entry(
            "coffee-luma-sobel",
            "coffee.png",
            ("-k", "@luma-sobel.txt", "--map", "abs"),
            "3→1: luminance then Sobel, one 1×3×3×3 layer: a grey edge map",
            setup=(("kernels", LUMA, "sobel-x", "-o", "luma-sobel.txt"),),
        ),
        Entry(
            "camera-tint",
            "camera.png",
            ("-k", TINT),
            "1→3: a grey photograph made RGB",
        ),
        Entry("chelsea", "chelsea.png", (), "the input"),
        Entry(
            "chelsea-pillow",
            "chelsea-pillow.png",
            (),
            "made by Pillow: a colour matrix, then a box blur (the unknown tool)",
        ),
        Entry(
            "coffee-learned-layer",
            "coffee.png",
            ("-k", "@layer.txt"),
            "the 3→3 layer learned from the cat, applied to another photo",
            setup=(
                tuple(
                    shlex.split(
                        "learn chelsea.png chelsea-pillow.png --size 3 --channels mix --bias "
                        "-o layer.txt"
                    )
                ),
            ),
        ),
    ]


def prepare_inputs(source: Path, out_dir: Path, width: int) -> None:
    """Shrink the photographs to ``width`` pixels, copy the synthetic samples, and make the
    stand-in for "an unknown tool's output": Pillow's EMBOSS filter of the cameraman."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, photo in PHOTOS.items():
        with Image.open(source / photo) as im:
            height = max(1, round(im.height * width / im.width))
            im.resize((width, height), Image.Resampling.LANCZOS).save(out_dir / name)
    for name in SYNTHETIC:
        with Image.open(source / name) as im:
            im.save(out_dir / name)
    with Image.open(out_dir / "camera.png") as im:
        im.filter(ImageFilter.EMBOSS).save(out_dir / "camera-pillow.png")
    with Image.open(out_dir / "chelsea.png") as im:
        mixed = im.convert("RGB").convert("RGB", COLOUR_MATRIX)
        mixed.filter(ImageFilter.BoxBlur(1)).save(out_dir / "chelsea-pillow.png")


def _resolve(argv: Sequence[str], directory: Path) -> list[str]:
    """The argv with file names made absolute (the commands are shown relative to the gallery)."""
    out = []
    for arg in argv:
        if arg.startswith("@"):
            out.append("@" + str(directory / arg[1:]))
        elif arg.endswith((".png", ".txt")) and "/" not in arg:
            out.append(str(directory / arg))
        else:
            out.append(arg)
    return out


def run_entries(entries: Sequence[Entry], directory: Path) -> None:
    """Run every entry's convtool commands on the inputs in ``directory``, writing there."""
    for entry in entries:
        for argv in entry.commands():
            code = convtool_main(_resolve(argv, directory))
            if code != 0:
                raise SystemExit(f"docs/gallery.py: convtool {shlex.join(argv)} exited {code}")


def caption(entry: Entry, show_input: bool) -> str:
    """What a cell says under its picture: the input's name, or the options (and a note)."""
    if not entry.options:
        return f"**{entry.input}**, {entry.caption}"
    words = [entry.input, *entry.options] if show_input else entry.options
    options = "`" + " ".join(shlex.quote(a) for a in words) + "`"
    setup = "".join(f"`convtool {shlex.join(argv)}`, then<br>" for argv in entry.setup)
    note = "" if entry.caption == entry.name else f"<br>{entry.caption}"
    return setup + options + note


def markdown_grid(
    entries: Sequence[Entry], show_input: bool, columns: int = 4, directory: str = PAGES_DIR
) -> str:
    """A table of pictures, ``columns`` a row, each with the options that made it (and the
    input's name, with ``show_input``); ``directory`` is where the pictures are seen from."""
    cells = [
        f'<img src="{directory}/{entry.output}" width="160" alt="{entry.name}"><br>'
        + caption(entry, show_input)
        for entry in entries
    ]
    rows = ["|" + " |" * columns, "|" + " --- |" * columns]
    for start in range(0, len(cells), columns):
        chunk = cells[start : start + columns]
        chunk += [" "] * (columns - len(chunk))
        rows.append("| " + " | ".join(chunk) + " |")
    return "\n".join(rows) + "\n"


def highlight_entries() -> list[Entry]:
    """The entries README.md shows, in the order of ``HIGHLIGHTS``."""
    by_name = {e.name: e for e in builtin_entries() + recipe_entries()}
    return [by_name[name] for name in HIGHLIGHTS]


def markdown() -> str:
    """The gallery tables: the built-ins and the recipes (docs pages), the highlights (README)."""
    return (
        "<!-- gallery: built-ins -->\n"
        + markdown_grid(builtin_entries(), show_input=False)
        + "\n<!-- gallery: recipes -->\n"
        + markdown_grid(recipe_entries(), show_input=True)
        + "\n<!-- gallery: channels -->\n"
        + markdown_grid(channel_entries(), show_input=True, columns=3)
        + "\n<!-- gallery: highlights -->\n"
        + markdown_grid(highlight_entries(), True, directory=README_DIR)
    )


def make_gallery(source: Path, out_dir: Path, width: int) -> list[Entry]:
    """Prepare the inputs and run every entry; return the entries, built-ins first."""
    entries = builtin_entries() + recipe_entries() + channel_entries()
    prepare_inputs(source, out_dir, width)
    run_entries(entries, out_dir)
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SAMPLES, help="the sample images")
    parser.add_argument("--out", type=Path, default=GALLERY, help="where the pictures go")
    parser.add_argument("--width", type=int, default=160, help="width of the photographs")
    parser.add_argument("--markdown", action="store_true", help="print the gallery tables")
    args = parser.parse_args(argv)
    make_gallery(args.source, args.out, args.width)
    if args.markdown:
        sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
