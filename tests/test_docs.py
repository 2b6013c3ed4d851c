"""README.md and the pages of docs/ never lie: their commands are run and their output and
pictures checked. Marked blocks are collected from README.md and every ``docs/*.md``:

- "The textbook, with convtool" (docs/textbook.md): every ``$ command`` of each
  ``<!-- textbook: NAME -->`` block is run and its output (stdout, then stderr) compared with
  the lines the page shows; so is every ``<!-- console: NAME -->`` block (README's tour);
- recipes (README's tour, docs/usage.md, docs/learn.md): every command of each
  ``<!-- recipe: NAME -->`` block is run on small copies of the sample images, and what it made
  is checked against an independent computation;
- the gallery: ``docs/gallery.py`` covers every built-in kernel, makes real pictures, and the
  committed pictures and the gallery tables of the pages and README are what it makes today;
- links: every relative link, ``#anchor`` and picture of README.md and the pages resolves
  (``mkdocs build --strict`` checks the pages' links too, but not README's);
- "Coming from another tool" (docs/coming-from.md): each claim about OpenCV, Pillow, scipy and
  ImageMagick is pinned by a small experiment;
- ``sample_images/``: the synthetic samples are what ``docs/make_samples.py`` makes.

convtool commands run in-process through ``convtool.cli.main`` (the console entry point, with
stdin, stdout and stderr swapped for buffers) so the whole file stays fast; pipelines and other
programs run through bash, with ``convtool`` on PATH running this interpreter's convtool.
"""

from __future__ import annotations

import glob
import importlib.util
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convtool.cli import main

from conftest import CONVERT, imagemagick

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SAMPLES = ROOT / "sample_images"
DOCS = ROOT / "docs"
# Where examples live, in the order their marked blocks are collected.
DOC_FILES = [README, *sorted(DOCS.glob("*.md"))]


def load_script(name: str):
    """Import ``docs/NAME.py`` as a module."""
    spec = importlib.util.spec_from_file_location(f"docs_{name}", DOCS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


# Marked blocks of README.md and docs/*.md ------------------------------------------------------


@dataclass
class Block:
    """A fenced code block that follows an ``<!-- KIND: NAME -->`` marker in ``source``."""

    kind: str
    name: str
    lang: str
    lines: list[str]
    source: str = "README.md"


def marked_blocks(kind: str, text: str | None = None) -> dict[str, Block]:
    """Every code block marked ``<!-- KIND: NAME -->`` in README.md and docs/*.md (or in
    ``text``), by name, in the order of ``DOC_FILES`` and within each file."""
    if text is None:
        sources = [(str(f.relative_to(ROOT)), f.read_text(encoding="utf-8")) for f in DOC_FILES]
    else:
        sources = [("text", text)]
    pattern = re.compile(
        r"<!-- " + re.escape(kind) + r": ([\w-]+) -->\n```(\w*)\n(.*?)\n```", re.DOTALL
    )
    blocks: dict[str, Block] = {}
    for source, body in sources:
        for match in pattern.finditer(body):
            name = match.group(1)
            assert name not in blocks, (
                f"two blocks are marked {kind}: {name} ({blocks[name].source} and {source})"
            )
            lines = match.group(3).split("\n")
            blocks[name] = Block(kind, name, match.group(2), lines, source)
    return blocks


@dataclass
class Step:
    """One ``$ command`` of a console block and the output lines the README shows for it."""

    command: str
    expected: list[str] = field(default_factory=list)


def console_steps(block: Block) -> list[Step]:
    steps: list[Step] = []
    for line in block.lines:
        if line.startswith("$ "):
            steps.append(Step(line[2:]))
        else:
            assert steps, f"{block.name}: output before the first command: {line!r}"
            steps[-1].expected.append(line)
    return steps


def script_commands(block: Block) -> list[str]:
    """The command lines of a shell block: comments and blank lines left out."""
    return [ln for ln in block.lines if ln.strip() and not ln.lstrip().startswith("#")]


# Running commands -----------------------------------------------------------------------------


@dataclass
class Ran:
    code: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        """What a terminal shows: stdout, then stderr (each command here writes them in turn)."""
        return (self.stdout + self.stderr).decode("utf-8")


def run_convtool(argv: list[str], stdin: bytes = b"") -> Ran:
    """``convtool ARGV`` in this process: main() with stdin, stdout and stderr as buffers."""
    out, err = io.BytesIO(), io.BytesIO()
    streams = (
        io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"),
        io.TextIOWrapper(out, encoding="utf-8", write_through=True),
        io.TextIOWrapper(err, encoding="utf-8", write_through=True),
    )
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = streams
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        for stream in streams[1:]:
            stream.flush()
        sys.stdin, sys.stdout, sys.stderr = saved
    return Ran(code, out.getvalue(), err.getvalue())


class Shell:
    """Runs README command lines in ``cwd``.

    A line that is one ``convtool`` command (with ``<``/``>`` redirections and ``*`` globs)
    runs in-process; any other line (pipelines, ``printf``, ``cat``, ``python3 -c``) runs in
    bash, where ``convtool`` and ``python3`` are this interpreter's.
    """

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        bin_dir = cwd / ".bin"
        bin_dir.mkdir(exist_ok=True)
        # Wrapper scripts, not symlinks: Python started through a symlink outside its virtual
        # environment does not find the environment's pyvenv.cfg and runs bare.
        for name, args in (("convtool", ' -m convtool "$@"'), ("python3", ' "$@"')):
            wrapper = bin_dir / name
            wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}"{args}\n')
            wrapper.chmod(0o755)
        self.env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
        source = Path(__import__("convtool").__file__).resolve().parent.parent
        self.env["PYTHONPATH"] = os.pathsep.join(
            [str(source), *filter(None, [os.environ.get("PYTHONPATH")])]
        )

    def run(self, line: str) -> Ran:
        lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>()")
        lexer.whitespace_split = True
        tokens = list(lexer)
        specials = {t for t in tokens if t and set(t) <= set("|&;<>()")}
        if tokens and tokens[0] == "convtool" and specials <= {"<", ">"}:
            return self._in_process(tokens[1:])
        done = subprocess.run(
            ["bash", "-c", "set -eo pipefail\n" + line],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            timeout=120,
        )
        return Ran(done.returncode, done.stdout, done.stderr)

    def _in_process(self, tokens: list[str]) -> Ran:
        argv: list[str] = []
        stdin, stdout_file = b"", None
        it = iter(tokens)
        for token in it:
            if token == "<":
                stdin = (self.cwd / next(it)).read_bytes()
            elif token == ">":
                stdout_file = self.cwd / next(it)
            elif "*" in token:
                matches = sorted(glob.glob(token, root_dir=self.cwd))
                argv += matches or [token]
            else:
                argv.append(token)
        saved = Path.cwd()
        os.chdir(self.cwd)
        try:
            ran = run_convtool(argv, stdin)
        finally:
            os.chdir(saved)
        if stdout_file is not None:
            stdout_file.write_bytes(ran.stdout)
            ran = Ran(ran.code, b"", ran.stderr)
        return ran

    def ok(self, line: str) -> Ran:
        ran = self.run(line)
        assert ran.code == 0, f"{line}\nexit {ran.code}\n{ran.text}"
        return ran


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def unit(path: Path) -> np.ndarray:
    """An 8-bit image as floats in [0, 1], the way convtool reads it."""
    return pixels(path).astype(np.float64) / 255


def to_8bit(values: np.ndarray) -> np.ndarray:
    """convtool's writing half of the pixel policy for 8-bit: clamp, × 255, round."""
    return np.rint(np.clip(values, 0, 1) * 255).astype(np.uint8)


def assert_within_one_level(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    diff = np.abs(actual.astype(np.int64) - expected.astype(np.int64))
    assert diff.max() <= 1, f"{int((diff > 1).sum())} values differ by up to {diff.max()}"


def gray(rgb01: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luminance (Pillow's L weights), in floating point, as ``--gray`` does."""
    return rgb01 @ np.array([0.299, 0.587, 0.114])


def shrunk(name: str, width: int) -> Image.Image:
    with Image.open(SAMPLES / name) as im:
        height = round(im.height * width / im.width)
        return im.resize((width, height), Image.Resampling.LANCZOS)


# sample_images/ --------------------------------------------------------------------------------


def test_synthetic_samples_are_what_make_samples_makes(tmp_path):
    """The committed synthetic images hold exactly what docs/make_samples.py writes."""
    written = load_script("make_samples").write_samples(tmp_path)
    assert len(written) == 5
    for path in written:
        committed = SAMPLES / path.name
        if path.suffix == ".txt":
            assert committed.read_text() == path.read_text(), path.name
        else:
            with Image.open(committed) as a, Image.open(path) as b:
                assert a.mode == b.mode == "L", path.name
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=path.name)
    sources = (SAMPLES / "SOURCES.md").read_text()
    for path in written:
        assert f"| {path.name} |" in sources, f"{path.name} is not listed in SOURCES.md"


def test_textbook_samples_are_the_books_image():
    x = np.loadtxt(SAMPLES / "textbook-6x8.txt")
    expected = np.ones((6, 8))
    expected[:, 2:6] = 0
    np.testing.assert_array_equal(x, expected)
    np.testing.assert_array_equal(np.loadtxt(SAMPLES / "textbook-8x6.txt"), expected.T)
    np.testing.assert_array_equal(pixels(SAMPLES / "textbook-6x8.png"), expected * 255)


# The gallery ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gallery():
    return load_script("gallery")


def test_gallery_has_every_builtin_and_nothing_else(gallery):
    from convtool.kernels.builtins import BUILTINS

    shown = [e.name for e in gallery.builtin_entries() if e.options]
    assert shown == list(BUILTINS)
    for entry in gallery.builtin_entries()[1:]:
        spec = entry.options[entry.options.index("-k") + 1]
        assert spec.split(":")[0] == entry.name


def test_gallery_refuses_a_builtin_without_an_entry(gallery, monkeypatch):
    """A new built-in kernel makes the gallery fail until it is given an entry."""
    monkeypatch.delitem(gallery.BUILTIN_OPTIONS, "sobel-x")
    with pytest.raises(SystemExit, match="sobel-x"):
        gallery.builtin_entries()


def test_gallery_on_tiny_images(gallery, tmp_path):
    """The script runs end to end; a step edge gives exactly the pictures it must."""
    source = tmp_path / "source"
    source.mkdir()
    step = np.zeros((32, 32), np.uint8)
    step[:, 16:] = 255
    Image.fromarray(step).save(source / "camera.png")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (20, 32, 3), dtype=np.uint8)).save(source / "coffee.png")
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(source / "chelsea.png")
    Image.fromarray(np.kron([[0, 255], [255, 0]], np.ones((8, 8))).astype(np.uint8)).save(
        source / "checkerboard.png"
    )
    out = tmp_path / "gallery"
    entries = gallery.make_gallery(source, out, width=32)

    from convtool.kernels.builtins import BUILTINS

    names = {e.name for e in entries}
    assert set(BUILTINS) <= names
    for entry in entries:
        with Image.open(out / entry.output) as im:
            im.load()
            assert im.format == "PNG"
            with Image.open(out / entry.input) as src:
                assert im.size == src.size, entry.name
    x = step / 255
    np.testing.assert_array_equal(pixels(out / "identity.png"), step)
    line = np.zeros((32, 32), np.uint8)
    line[:, 15:17] = 255  # Sobel x responds 4 on both columns next to the edge: clipped to 1
    np.testing.assert_array_equal(pixels(out / "sobel-x.png"), line)
    edge = np.zeros((32, 32), np.uint8)
    edge[:, 16] = 255  # [1, -1] anchored at column 1: x[j-1] - x[j] = -1 at the edge, |.|·4
    np.testing.assert_array_equal(pixels(out / "edge.png"), edge)
    from scipy import ndimage

    box = ndimage.correlate(x, np.full((5, 5), 1 / 25), mode="reflect")
    assert_within_one_level(pixels(out / "box.png"), to_8bit(box))


def test_committed_gallery_is_what_convtool_makes(gallery, tmp_path):
    """Every committed picture is what its command makes today (within one grey level)."""
    entries = gallery.builtin_entries() + gallery.recipe_entries() + gallery.channel_entries()
    inputs = {e.input for e in entries}
    for name in inputs:
        shutil.copy(gallery.GALLERY / name, tmp_path / name)
    gallery.run_entries(entries, tmp_path)
    for entry in entries:
        with (
            Image.open(gallery.GALLERY / entry.output) as a,
            Image.open(tmp_path / entry.output) as b,
        ):
            assert a.mode == b.mode, entry.name
            assert_within_one_level(np.asarray(a), np.asarray(b))
    committed = {p.name for p in gallery.GALLERY.iterdir()}
    made = {p.name for p in tmp_path.iterdir()}
    assert committed == made, "docs/gallery/ holds files the script does not make, or lacks some"
    assert sum(p.stat().st_size for p in gallery.GALLERY.iterdir()) < 2_000_000


def test_committed_gallery_inputs_are_the_shrunk_samples(gallery, tmp_path):
    gallery.prepare_inputs(SAMPLES, tmp_path, 160)
    for name in [*gallery.PHOTOS, *gallery.SYNTHETIC, "camera-pillow.png", "chelsea-pillow.png"]:
        assert_within_one_level(pixels(gallery.GALLERY / name), pixels(tmp_path / name))


def test_gallery_tables_are_the_scripts(gallery):
    """Each gallery table is in one file (the built-ins on the kernels page, the recipes on the
    usage page, a few in README), and is what the script makes for that file."""
    texts = {path: path.read_text(encoding="utf-8") for path in DOC_FILES}
    for marker, where, made in (
        (
            "<!-- gallery: built-ins -->\n",
            DOCS / "kernels.md",
            gallery.markdown_grid(gallery.builtin_entries(), show_input=False),
        ),
        (
            "<!-- gallery: recipes -->\n",
            DOCS / "usage.md",
            gallery.markdown_grid(gallery.recipe_entries(), show_input=True),
        ),
        (
            "<!-- gallery: channels -->\n",
            DOCS / "channels.md",
            gallery.markdown_grid(gallery.channel_entries(), show_input=True, columns=3),
        ),
        (
            "<!-- gallery: highlights -->\n",
            README,
            gallery.markdown_grid(
                gallery.highlight_entries(), show_input=True, directory=gallery.README_DIR
            ),
        ),
    ):
        assert [path for path, text in texts.items() if marker in text] == [where], marker
        text = texts[where]
        assert text.count(marker) == 1, marker
        start = text.index(marker) + len(marker)
        end = text.find("\n\n", start)
        table = text[start : end + 1 if end >= 0 else len(text)]
        assert table == made, f"{where.name}: {marker.strip()} is not what docs/gallery.py makes"


# Links --------------------------------------------------------------------------------------


def without_code(text: str) -> str:
    """Markdown with its fenced code blocks and code spans taken out."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def github_anchors(path: Path) -> set[str]:
    """The ``#anchors`` GitHub gives the headings of a Markdown file (and mkdocs the same ones
    for headings of words, spaces, hyphens and colons)."""
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    anchors: set[str] = set()
    for match in re.finditer(r"^#{1,6} +(.+?) *$", text, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", match.group(1).replace("`", "").lower()).replace(" ", "-")
        number = 1
        candidate = slug
        while candidate in anchors:
            candidate = f"{slug}-{number}"
            number += 1
        anchors.add(candidate)
    return anchors


def relative_links(path: Path) -> list[str]:
    """The relative link targets and picture sources of a Markdown file (no URLs)."""
    text = without_code(path.read_text(encoding="utf-8"))
    targets = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r'<img src="([^"]+)"', text)
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_every_link_anchor_and_picture_resolves():
    """README is outside mkdocs' docs_dir, so its links are checked here; the pages' too, with
    GitHub's anchors, so that they work on GitHub as well as in the built site."""
    checked = 0
    for doc in DOC_FILES:
        for target in relative_links(doc):
            path, _, anchor = target.partition("#")
            linked = (doc.parent / path).resolve() if path else doc
            assert linked.exists(), f"{doc.name}: {target}: no such file"
            if anchor:
                assert anchor in github_anchors(linked), f"{doc.name}: {target}: no such heading"
            checked += 1
    assert checked > 50
    pages = {f"docs/{page.name}" for page in DOCS.glob("*.md")}
    linked = {target.partition("#")[0] for target in relative_links(README)}
    assert pages <= linked, f"README does not link {sorted(pages - linked)}"


# The textbook ----------------------------------------------------------------------------------

TEXTBOOK_BLOCKS = [
    "corr2d",
    "layer",
    "edges",
    "edges-png",
    "transposed",
    "learn",
    "learn-gd",
    "convolve",
    "learn-convolve",
    "receptive-field",
]
CONSOLE_BLOCKS = ["tour-kernels", "layer-file", "layer-apply", "compose"]


def check_console_blocks(blocks: dict[str, Block], shell: Shell) -> None:
    """Run every ``$ command`` of the blocks in order; each prints the lines shown."""
    for block in blocks.values():
        assert block.lang == "console"
        for step in console_steps(block):
            ran = shell.run(step.command)
            assert ran.code == 0, f"{step.command}\n{ran.text}"
            assert ran.text.splitlines() == step.expected, (
                f"{block.source} block {block.name!r}: `{step.command}` now prints\n{ran.text}"
            )


def test_textbook_commands_print_what_the_page_shows(tmp_path):
    """Every ``$ command`` of the textbook blocks, run in order, prints the lines shown."""
    blocks = marked_blocks("textbook")
    assert list(blocks) == TEXTBOOK_BLOCKS
    assert {block.source for block in blocks.values()} == {"docs/textbook.md"}
    (tmp_path / "sample_images").mkdir()
    for name in ("textbook-6x8.txt", "textbook-8x6.txt", "textbook-6x8.png"):
        shutil.copy(SAMPLES / name, tmp_path / "sample_images" / name)
    check_console_blocks(blocks, Shell(tmp_path))


def test_console_blocks_print_what_they_show(tmp_path):
    """The console blocks outside the textbook (README's tour) print the lines shown."""
    blocks = marked_blocks("console")
    assert list(blocks) == CONSOLE_BLOCKS
    (tmp_path / "sample_images").mkdir()
    shutil.copy(SAMPLES / "textbook-6x8.txt", tmp_path / "sample_images" / "textbook-6x8.txt")
    check_console_blocks(blocks, Shell(tmp_path))
    assert_ignored_by_git(tmp_path)


def test_textbook_numbers():
    """The facts the text states about the outputs, independently of convtool."""
    blocks = marked_blocks("textbook")
    corr2d = console_steps(blocks["corr2d"])[1].expected
    assert corr2d == ["19 25", "37 43"]
    transposed = console_steps(blocks["transposed"])[1].expected
    assert transposed == ["0 0 0 0 0"] * 8
    convolved = [console_steps(blocks["convolve"])[i].expected for i in (0, 1)]
    x = np.arange(9.0).reshape(3, 3)
    k = np.array([[3.0, 2.0], [1.0, 0.0]])
    expected = [
        " ".join(f"{(x[i : i + 2, j : j + 2] * k).sum():g}" for j in range(2)) for i in range(2)
    ]
    assert convolved == [expected, expected]
    layer = [console_steps(blocks["layer"])[i].expected for i in (0, 2)]
    assert layer == [["20 26", "38 44"]] * 2  # corr2d + the bias 1
    stacked = console_steps(blocks["receptive-field"])[0].expected
    assert stacked == [f"{19 + 25 + 37 + 43}"]  # the 2×2 of ones sums corr2d's output


# Recipes -------------------------------------------------------------------------------------

RECIPES = [
    "tour-apply",
    "tour-learn",
    "tour-pipeline",
    "learn-back",
    "edge-magnitude",
    "edge-magnitude-python",
    "emboss",
    "unsharp",
    "blur-laplacian",
    "batch",
    "pipeline",
    "learn-unknown",
    "depth",
]


@pytest.fixture
def recipe(tmp_path):
    """Run a README recipe in a directory whose sample_images/ holds small copies."""
    samples = tmp_path / "sample_images"
    samples.mkdir()
    shrunk("camera.png", 48).save(samples / "camera.png")
    shrunk("coffee.png", 45).save(samples / "coffee.png")
    shrunk("chelsea.png", 40).save(samples / "chelsea.png")
    shell = Shell(tmp_path)

    def run(name: str) -> Path:
        block = marked_blocks("recipe")[name]
        if block.lang == "python":
            saved = Path.cwd()
            os.chdir(tmp_path)
            try:
                exec(compile("\n".join(block.lines), f"README recipe {name}", "exec"), {})
            finally:
                os.chdir(saved)
        else:
            assert block.lang == "sh"
            for line in script_commands(block):
                shell.ok(line)
        return tmp_path

    return run


def test_every_recipe_is_tested():
    assert list(marked_blocks("recipe")) == RECIPES


def corr(x: np.ndarray, k, mode: str = "reflect") -> np.ndarray:
    """scipy.ndimage as the oracle, each colour channel alike."""
    from scipy import ndimage

    k = np.asarray(k, dtype=np.float64)
    if x.ndim == 3:
        return np.stack([ndimage.correlate(x[..., c], k, mode=mode) for c in range(3)], -1)
    return ndimage.correlate(x, k, mode=mode)


SOBEL_X = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])


def assert_ignored_by_git(directory: Path) -> None:
    """What README's tour wrote in ``directory`` is ignored by git in a checkout, so that a
    newcomer who runs it there is left with no untracked file."""
    if not (ROOT / ".git").exists():
        return
    made = sorted(
        p.name + ("/" if p.is_dir() else "")
        for p in directory.iterdir()
        if p.name not in {"sample_images", ".bin", "step.png"}
    )
    assert made
    for name in made:
        done = subprocess.run(["git", "check-ignore", "-q", name], cwd=ROOT, check=False)
        assert done.returncode == 0, f"{name} (written by README's tour) is not ignored by git"


def test_recipe_tour_apply(recipe):
    """README's tour: a blur, a chain (blur then Laplacian), a batch into a directory."""
    from convtool.kernels.builtins import LAPLACIAN, gaussian

    d = recipe("tour-apply")
    x = unit(d / "sample_images/coffee.png")
    assert_within_one_level(pixels(d / "coffee-blurred.png"), to_8bit(corr(x, gaussian(2))))
    log = corr(corr(unit(d / "sample_images/camera.png"), gaussian(2)), LAPLACIAN)
    expected = (log - log.min()) / (log.max() - log.min())
    assert_within_one_level(pixels(d / "camera-log.png"), to_8bit(expected))
    inputs = sorted(p.name for p in (d / "sample_images").glob("*.png"))
    assert sorted(p.name for p in (d / "edges").iterdir()) == inputs
    for name in inputs:
        edges = to_8bit(np.abs(corr(unit(d / "sample_images" / name), SOBEL_X)))
        assert_within_one_level(pixels(d / "edges" / name), edges)
    assert_ignored_by_git(d)


def test_recipe_tour_learn(recipe):
    """README's tour: the emboss learned back from its 8-bit output, applied to another photo."""
    from convtool.kernels.builtins import EMBOSS

    d = recipe("tour-learn")
    np.testing.assert_allclose(np.loadtxt(d / "found.txt"), EMBOSS, atol=0.02)
    x = unit(d / "sample_images/coffee.png")
    assert_within_one_level(pixels(d / "coffee-embossed.png"), to_8bit(corr(x, EMBOSS)))
    assert_ignored_by_git(d)


def test_recipe_tour_pipeline(recipe):
    """README's tour: two processes through a pipe make what two runs through a file make."""
    d = recipe("tour-pipeline")
    camera = str(d / "sample_images/camera.png")
    assert run_convtool(["apply", camera, "-k", "box:3", "-o", str(d / "step.png")]).code == 0
    again = ["apply", str(d / "step.png"), "-k", "laplacian", "--map", "abs"]
    assert run_convtool([*again, "-o", str(d / "again.png")]).code == 0
    np.testing.assert_array_equal(pixels(d / "camera-edges-box.png"), pixels(d / "again.png"))
    (d / "again.png").unlink()
    assert_ignored_by_git(d)


def test_recipe_learn_back(recipe):
    """docs/learn.md: the Gaussian learned from its 8-bit output blurs within a grey level."""
    from convtool.kernels.builtins import gaussian

    d = recipe("learn-back")
    np.testing.assert_allclose(np.loadtxt(d / "kernel.txt"), gaussian(1, size=5), atol=0.02)
    assert_within_one_level(pixels(d / "again.png"), pixels(d / "blurred.png"))


def test_recipe_edge_magnitude(recipe):
    d = recipe("edge-magnitude")
    x = unit(d / "sample_images/camera.png")
    assert_within_one_level(pixels(d / "camera-edges-x.png"), to_8bit(np.abs(corr(x, SOBEL_X))))
    assert_within_one_level(pixels(d / "camera-edges-y.png"), to_8bit(np.abs(corr(x, SOBEL_X.T))))


def test_recipe_edge_magnitude_python(recipe):
    d = recipe("edge-magnitude-python")
    x = unit(d / "sample_images/camera.png")
    magnitude = np.hypot(corr(x, SOBEL_X), corr(x, SOBEL_X.T))
    assert_within_one_level(pixels(d / "camera-magnitude.png"), to_8bit(magnitude))


def test_recipe_emboss(recipe):
    """The zero-sum relief is mid-grey on flat ground; the built-in keeps the picture."""
    d = recipe("emboss")
    x = unit(d / "sample_images/coffee.png")
    relief = np.array([[-2.0, -1, 0], [-1, 0, 1], [0, 1, 2]])
    assert_within_one_level(pixels(d / "relief.png"), to_8bit(corr(gray(x), relief) + 0.5))
    emboss = relief + np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]])
    assert_within_one_level(pixels(d / "coffee-embossed.png"), to_8bit(corr(x, emboss)))
    flat = np.full((9, 9), 0.3)
    assert np.allclose(corr(flat, relief) + 0.5, 0.5) and np.allclose(corr(flat, emboss), 0.3)


def test_recipe_unsharp(recipe):
    """sharpened = X + a·(X − G⋆X), and the kernel file holds δ + a·(δ − G)."""
    from convtool.kernels.builtins import gaussian

    d = recipe("unsharp")
    x = unit(d / "sample_images/coffee.png")
    blurred = corr(x, gaussian(2))
    assert_within_one_level(pixels(d / "coffee-sharper.png"), to_8bit(x + 1.5 * (x - blurred)))
    g1 = gaussian(1)
    delta = np.zeros_like(g1)
    delta[g1.shape[0] // 2, g1.shape[1] // 2] = 1
    np.testing.assert_allclose(np.loadtxt(d / "unsharp.txt"), delta + 0.8 * (delta - g1))
    blurred = corr(x, g1)
    assert_within_one_level(pixels(d / "coffee-sharper-2.png"), to_8bit(x + 0.8 * (x - blurred)))


def test_recipe_blur_then_laplacian(recipe):
    from convtool.kernels.builtins import LAPLACIAN, gaussian

    d = recipe("blur-laplacian")
    log = corr(corr(unit(d / "sample_images/camera.png"), gaussian(2)), LAPLACIAN)
    expected = (log - log.min()) / (log.max() - log.min())
    assert_within_one_level(pixels(d / "camera-log.png"), to_8bit(expected))


def test_recipe_batch(recipe):
    d = recipe("batch")
    inputs = sorted(p.name for p in (d / "sample_images").glob("*.png"))
    assert sorted(p.name for p in (d / "blurred").iterdir()) == inputs
    assert sorted(p.name for p in (d / "sharp").iterdir()) == inputs  # the directory's images
    assert sorted(p.name for p in (d / "edges").iterdir()) == [
        f"{Path(n).stem}-sobel-y.png" for n in inputs
    ]
    sharpen = [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]
    for name in inputs:
        x = unit(d / "sample_images" / name)
        assert_within_one_level(
            pixels(d / "blurred" / name), to_8bit(corr(x, np.full((5, 5), 0.04)))
        )
        assert_within_one_level(pixels(d / "sharp" / name), to_8bit(corr(x, sharpen)))


def test_recipe_pipeline(recipe):
    """Two processes through a pipe make what two runs through a file make."""
    d = recipe("pipeline")
    assert (
        run_convtool(
            ["apply", str(d / "sample_images/camera.png"), "-k", "box:3", "-o", str(d / "step.png")]
        ).code
        == 0
    )
    assert (
        run_convtool(
            ["apply", str(d / "step.png"), "-k", "laplacian", "-o", str(d / "again.png")]
        ).code
        == 0
    )
    np.testing.assert_array_equal(pixels(d / "out.png"), pixels(d / "again.png"))


def test_recipe_learn_unknown(recipe):
    """The kernel found is Pillow's EMBOSS upside down, and reproduces it on other photos."""
    from PIL import ImageFilter

    d = recipe("learn-unknown")
    text = (d / "found.txt").read_text()
    bias = float(re.search(r"# bias: (\S+)", text).group(1))
    weights = np.loadtxt(d / "found.txt")
    (_, _), _, _, pillow = ImageFilter.EMBOSS.filterargs
    np.testing.assert_allclose(weights, np.reshape(pillow, (3, 3))[::-1], atol=1e-4)
    assert bias == pytest.approx(128 / 255, abs=1e-4)
    larger = Shell(d).ok("convtool learn sample_images/camera.png mystery.png --size 5 --bias -o -")
    weights5 = np.loadtxt(io.StringIO(larger.stdout.decode()))
    np.testing.assert_allclose(weights5[1:-1, 1:-1], weights, atol=1e-6)
    weights5[1:-1, 1:-1] = 0
    assert np.abs(weights5).max() < 1e-6
    for name in ("coffee", "chelsea"):
        with Image.open(d / "sample_images" / f"{name}.png") as im:
            theirs = np.asarray(im.filter(ImageFilter.EMBOSS))
        ours = pixels(d / f"{name}-found.png")
        assert_within_one_level(ours[1:-1, 1:-1], theirs[1:-1, 1:-1])


def test_recipe_depth(recipe, tmp_path):
    """16 bits stay 16 bits; --map none --depth 32 keeps the raw signed gradient."""
    import tifffile

    from convtool.kernels.builtins import SHARPEN

    rng = np.random.default_rng(3)
    scan = np.linspace(0, 60000, 30 * 40).reshape(30, 40) + rng.integers(0, 3000, (30, 40))
    tifffile.imwrite(tmp_path / "scan16.tif", scan.astype(np.uint16))
    d = recipe("depth")
    x = scan.astype(np.uint16) / 65535
    sharpened = tifffile.imread(d / "sharpened.tif")
    assert sharpened.dtype == np.uint16
    expected = np.rint(np.clip(corr(x, SHARPEN), 0, 1) * 65535)
    assert np.abs(sharpened.astype(np.int64) - expected).max() <= 1
    gradient = tifffile.imread(d / "gradient.tif")
    assert gradient.dtype == np.float32
    np.testing.assert_allclose(gradient, corr(x, SOBEL_X), atol=1e-5)
    assert gradient.min() < 0


# Coming from another tool: each ✓ of the README's table ----------------------------------------


def distinct(kh: int, kw: int) -> np.ndarray:
    """A kernel with distinct entries (powers of two, signs mixed), so no flip can hide."""
    values = 2.0 ** np.arange(kh * kw) * np.where(np.arange(kh * kw) % 3 == 1, -1, 1)
    return np.random.default_rng(kh * 10 + kw).permutation(values).reshape(kh, kw) / 2 ** (kh * kw)


@pytest.fixture(scope="module")
def image8():
    return np.random.default_rng(11).integers(0, 256, (13, 17), dtype=np.uint8)


def apply_npy(tmp_path: Path, x: np.ndarray, *options: str) -> np.ndarray:
    """``convtool apply x.npy OPTIONS -o out.npy`` (raw float values, no map)."""
    np.save(tmp_path / "x.npy", x)
    ran = run_convtool(["apply", str(tmp_path / "x.npy"), *options, "-o", str(tmp_path / "o.npy")])
    assert ran.code == 0, ran.text
    return np.load(tmp_path / "o.npy")


def kernel_file(tmp_path: Path, k: np.ndarray, name: str = "K.txt") -> str:
    np.savetxt(tmp_path / name, k, fmt="%.17g")
    return f"@{tmp_path / name}"


OPENCV_BORDERS = {
    "reflect": "BORDER_REFLECT",
    "mirror": "BORDER_REFLECT_101",
    "nearest": "BORDER_REPLICATE",
    "constant": "BORDER_CONSTANT",
}


@pytest.mark.parametrize("shape", [(3, 3), (2, 2), (4, 3), (2, 5)])
def test_opencv_filter2d_is_correlation_with_mirror_by_default(tmp_path, shape):
    """``--border mirror`` is filter2D's default, for odd and even sizes (same anchor)."""
    cv2 = pytest.importorskip("cv2")
    x = np.random.default_rng(1).random((11, 13))
    k = distinct(*shape)
    ours = apply_npy(tmp_path, x, "-k", kernel_file(tmp_path, k), "--border", "mirror")
    np.testing.assert_allclose(ours, cv2.filter2D(x, -1, k), atol=1e-12)
    for border, name in OPENCV_BORDERS.items():
        theirs = cv2.filter2D(x, -1, k, borderType=getattr(cv2, name))
        ours = apply_npy(tmp_path, x, "-k", kernel_file(tmp_path, k), "--border", border)
        np.testing.assert_allclose(ours, theirs, atol=1e-12, err_msg=border)
    flipped = cv2.filter2D(x, -1, cv2.flip(k, -1))
    ours = apply_npy(
        tmp_path, x, "-k", kernel_file(tmp_path, k), "--convolve", "--border", "mirror"
    )
    np.testing.assert_allclose(ours, flipped, atol=1e-12)
    with pytest.raises(cv2.error):
        cv2.filter2D(x, -1, k, borderType=cv2.BORDER_WRAP)


def pad_to_anchor(k: np.ndarray, ay: int, ax: int) -> np.ndarray:
    """K with zeros around it so that its cell (ay, ax) is the centre (kh//2, kw//2)."""
    kh, kw = k.shape
    rows = (max(0, kh - 1 - 2 * ay), max(0, 2 * ay - (kh - 1)))
    cols = (max(0, kw - 1 - 2 * ax), max(0, 2 * ax - (kw - 1)))
    return np.pad(k, (rows, cols))


def test_anchor_and_origin_are_a_zero_padded_kernel():
    """OpenCV's anchor, scipy's origin and convtool's padded kernel agree for every cell."""
    cv2 = pytest.importorskip("cv2")
    from scipy import ndimage

    import convtool

    x = np.random.default_rng(2).random((9, 11))
    for shape in [(3, 3), (2, 4)]:
        k = distinct(*shape)
        kh, kw = shape
        for ay in range(kh):
            for ax in range(kw):
                ours = convtool.correlate(x, pad_to_anchor(k, ay, ax), border="mirror")
                theirs = cv2.filter2D(x, -1, k, anchor=(ax, ay))
                np.testing.assert_allclose(ours, theirs, atol=1e-12)
                scipy = ndimage.correlate(x, k, mode="mirror", origin=(ay - kh // 2, ax - kw // 2))
                np.testing.assert_allclose(ours, scipy, atol=1e-12)
    assert pad_to_anchor(np.ones((3, 3)), 0, 0)[2:, 2:].sum() == 9  # K in the bottom-right corner


def test_opencv_8bit_saturates_and_delta_is_the_bias(tmp_path, image8):
    cv2 = pytest.importorskip("cv2")
    Image.fromarray(image8).save(tmp_path / "in.png")
    k = SOBEL_X / 4
    spec = kernel_file(tmp_path, k)
    for extra, delta in (([], 0), (["--bias", str(100 / 255)], 100)):
        ran = run_convtool(
            [
                "apply",
                str(tmp_path / "in.png"),
                "-k",
                spec,
                "--border",
                "mirror",
                *extra,
                "-o",
                str(tmp_path / "out.png"),
            ]
        )
        assert ran.code == 0, ran.text
        theirs = cv2.filter2D(image8, -1, k, delta=delta)
        assert_within_one_level(pixels(tmp_path / "out.png"), theirs)


@pytest.mark.parametrize("mode", ["reflect", "mirror", "nearest", "wrap", "constant"])
def test_scipy_ndimage_modes_are_convtools_borders(tmp_path, mode):
    from scipy import ndimage

    x = np.random.default_rng(3).random((10, 12))
    k = distinct(3, 4)
    ours = apply_npy(
        tmp_path, x, "-k", kernel_file(tmp_path, k), "--border", mode, "--cval", "0.25"
    )
    np.testing.assert_allclose(ours, ndimage.correlate(x, k, mode=mode, cval=0.25), atol=1e-12)


def test_scipy_ndimage_on_uint8_truncates_and_wraps_around():
    from scipy import ndimage

    x = np.array([[10, 10, 20, 20]], np.uint8)
    np.testing.assert_array_equal(ndimage.correlate(x, [[1.0, -1.0]], mode="nearest")[0, 2], 246)
    np.testing.assert_array_equal(ndimage.correlate(np.array([[11]], np.uint8), [[0.5]]), [[5]])


def pillow_kernel(size: int, k: np.ndarray, **options):
    from PIL import ImageFilter

    return ImageFilter.Kernel((size, size), k.ravel().tolist(), **options)


@pytest.mark.parametrize("size", [3, 5])
def test_pillow_kernel_correlates_upside_down(tmp_path, image8, size):
    """Pillow's Kernel(K) is convtool's -k K[::-1] (rows reversed), scale and offset included,
    except the outermost pixels, which Pillow copies from the input; Kernel(K[:, ::-1]) is
    convtool's --convolve with K."""
    r = size // 2
    k = np.random.default_rng(size).integers(-4, 5, (size, size)).astype(np.float64)
    k[r, r] = 20  # a positive sum, far from zero
    scale, offset = 2.5, 40
    Image.fromarray(image8).save(tmp_path / "in.png")
    theirs = np.asarray(
        Image.fromarray(image8).filter(pillow_kernel(size, k, scale=scale, offset=offset))
    )
    for options, expect_equal in (
        (["-k", kernel_file(tmp_path, k[::-1], "rows-reversed.txt")], True),
        (["-k", kernel_file(tmp_path, k, "as-given.txt")], False),
        (["-k", kernel_file(tmp_path, k[::-1, ::-1], "turned.txt")], False),
        (["-k", kernel_file(tmp_path, k[:, ::-1], "columns-reversed.txt"), "--convolve"], True),
    ):
        ran = run_convtool(
            [
                "apply",
                str(tmp_path / "in.png"),
                *options,
                "--scale",
                str(1 / scale),
                "--bias",
                str(offset / 255),
                "-o",
                str(tmp_path / "out.png"),
            ]
        )
        assert ran.code == 0, ran.text
        ours = pixels(tmp_path / "out.png")
        diff = np.abs(ours.astype(int) - theirs.astype(int))[r:-r, r:-r]
        assert (diff.max() <= 1) == expect_equal, options
    inner = np.zeros(image8.shape, bool)
    inner[r:-r, r:-r] = True
    np.testing.assert_array_equal(theirs[~inner], image8[~inner])  # the border: unfiltered


def test_pillow_kernel_scale_defaults_to_the_sum(image8):
    """A zero-sum kernel with the default scale divides by 0: every filtered pixel is 0."""
    img = Image.fromarray(image8)
    out = np.asarray(img.filter(pillow_kernel(3, SOBEL_X, offset=50)))
    assert (out[1:-1, 1:-1] == 0).all()
    out = np.asarray(img.filter(pillow_kernel(3, SOBEL_X, scale=1, offset=50)))
    assert out[1:-1, 1:-1].max() > 50
    with pytest.raises(ValueError, match="wrong mode"):
        Image.new("F", (5, 5)).filter(pillow_kernel(3, SOBEL_X, scale=1))


def magick(tmp_path: Path, image8: np.ndarray, *args: str) -> np.ndarray:
    Image.fromarray(image8).save(tmp_path / "in.png")
    done = subprocess.run(
        [CONVERT, str(tmp_path / "in.png"), *args, "-depth", "8", "gray:-"],
        capture_output=True,
        check=True,
    )
    return np.frombuffer(done.stdout, np.uint8).reshape(image8.shape)


def magick_kernel(k: np.ndarray, origin: tuple[int, int] | None = None) -> str:
    kh, kw = k.shape
    where = "" if origin is None else f"+{origin[1]}+{origin[0]}"
    return f"{kw}x{kh}{where}: " + " ".join(",".join(f"{v:.17g}" for v in row) for row in k)


def ours8(
    image8: np.ndarray, k: np.ndarray, border: str = "nearest", cval: float = 0.0, bias: float = 0
) -> np.ndarray:
    """What convtool writes for an 8-bit image (through the API: the CLI is pinned above)."""
    import convtool

    return to_8bit(convtool.correlate(image8 / 255, k, border=border, cval=cval) + bias)


VIRTUAL_PIXELS = [
    ("Edge", "nearest", 0.0),
    ("Mirror", "reflect", 0.0),
    ("Tile", "wrap", 0.0),
    ("Black", "constant", 0.0),
    ("Gray", "constant", 0.5),
    ("White", "constant", 1.0),
]


@imagemagick
def test_imagemagick_correlate_convolve_and_virtual_pixels(tmp_path, image8):
    k = np.abs(distinct(5, 5))
    k /= k.sum()  # no negative results: nothing for Q16 to clip
    spec = magick_kernel(k)
    correlated = magick(tmp_path, image8, "-morphology", "Correlate", spec)
    assert_within_one_level(correlated, ours8(image8, k))
    convolved = magick(tmp_path, image8, "-morphology", "Convolve", spec)
    assert_within_one_level(convolved, ours8(image8, k[::-1, ::-1]))
    for virtual, border, cval in VIRTUAL_PIXELS:
        args = ("-virtual-pixel", virtual, "-morphology", "Correlate", spec)
        assert_within_one_level(
            magick(tmp_path, image8, *args), ours8(image8, k, border, cval=cval)
        )


@imagemagick
def test_imagemagick_bias_scale_normalise_and_origin(tmp_path, image8):
    k = distinct(3, 3)
    for bias in (["-bias", "50%"], ["-define", "convolve:bias=50%"]):
        theirs = magick(tmp_path, image8, *bias, "-morphology", "Correlate", magick_kernel(k))
        assert_within_one_level(theirs, ours8(image8, k, bias=0.5))
    pos = np.abs(k)
    scaled = ("-define", "convolve:scale=0.5", "-morphology", "Correlate", magick_kernel(pos))
    assert_within_one_level(magick(tmp_path, image8, *scaled), ours8(image8, 0.5 * pos))
    normalised = ("-define", "convolve:scale=!", "-morphology", "Correlate", magick_kernel(pos))
    assert_within_one_level(magick(tmp_path, image8, *normalised), ours8(image8, pos / pos.sum()))
    legacy = " ".join(",".join(f"{v:.17g}" for v in row) for row in pos)
    theirs = magick(tmp_path, image8, "-convolve", legacy)
    assert_within_one_level(theirs, ours8(image8, pos / pos.sum()))  # normalised, not flipped
    for shape, origin in (((3, 3), (0, 2)), ((2, 2), None), ((4, 3), None)):
        k = np.abs(distinct(*shape))
        k /= k.sum()
        kh, kw = shape
        anchor = origin if origin is not None else ((kh - 1) // 2, (kw - 1) // 2)
        theirs = magick(tmp_path, image8, "-morphology", "Correlate", magick_kernel(k, origin))
        assert_within_one_level(theirs, ours8(image8, pad_to_anchor(k, *anchor)))


# Shell completion and --help -------------------------------------------------------------------


def convtool_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    source = Path(__import__("convtool").__file__).resolve().parent.parent
    python_path = os.pathsep.join([str(source), *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run(
        [sys.executable, "-m", "convtool", *args],
        env={**os.environ, "PYTHONPATH": python_path, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_offers_shell_completion():
    ran = run_convtool(["--help"])
    assert ran.code == 0
    assert "--install-completion" in ran.text and "--show-completion" in ran.text


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("convtool apply x.png --border ", "reflect mirror nearest wrap constant valid"),
        ("convtool apply x.png --map ", "clip abs rescale none"),
        ("convtool learn a.png b.png --method ", "lstsq gd"),
        ("convtool apply x.png --depth ", "8 16 32"),
        ("convtool apply x.png --alpha ", "auto keep filter"),
        ("convtool ap", "apply"),
    ],
)
def test_completion_offers_commands_and_choices(words, expected):
    """What the installed completion script asks convtool for, and gets."""
    done = convtool_process(
        env={
            "_CONVTOOL_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        }
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == expected.split()


def test_install_completion_for_bash(tmp_path):
    """README: the script goes to ~/.bash_completions/convtool.sh, sourced from ~/.bashrc."""
    env = {"HOME": str(tmp_path), "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    done = convtool_process("--install-completion", "bash", env=env)
    assert done.returncode == 0, done.stderr
    script = tmp_path / ".bash_completions" / "convtool.sh"
    assert str(script) in done.stdout
    assert "_CONVTOOL_COMPLETE=complete_bash" in script.read_text()
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()


def test_show_completion_for_a_given_shell():
    done = convtool_process(env={"_CONVTOOL_COMPLETE": "source_zsh"})
    assert done.returncode == 0 and done.stdout.lstrip().startswith("#compdef convtool")
    done = convtool_process(env={"_CONVTOOL_COMPLETE": "source_bash"})
    assert "complete -o default -F _convtool_completion convtool" in done.stdout


@pytest.mark.parametrize("command", ["apply", "learn", "kernels"])
def test_help_examples_are_whole_commands(command, monkeypatch):
    """Each command's --help has examples, each on one line of an 80-column terminal."""
    monkeypatch.setenv("COLUMNS", "80")
    ran = run_convtool([command, "--help"])
    assert ran.code == 0
    text = ran.text
    assert "Examples:" in text
    examples = text[text.index("Examples:") : text.index("\nArguments:")].splitlines()[1:]
    lines = [line.strip() for line in examples if line.strip()]
    assert len(lines) >= 3
    assert all(line.startswith("convtool ") for line in lines), (
        f"convtool {command} --help: an example is cut over two lines:\n" + "\n".join(lines)
    )
    assert max(len(line) for line in text.splitlines()) <= 80


def test_readme_first_command_leaves_the_checkout_clean():
    """README's first command writes its picture where git ignores it (no untracked file)."""
    first = re.search(r"```sh\n(.*?convtool apply sample_images/.*?)\n```", README.read_text())
    assert first is not None
    output = shlex.split(first.group(1))[shlex.split(first.group(1)).index("-o") + 1]
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(["git", "check-ignore", "-q", output], cwd=ROOT, check=False)
    assert done.returncode == 0, f"{output} (README's first command) is not ignored by git"
