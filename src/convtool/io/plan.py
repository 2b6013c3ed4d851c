"""Output planning: how a picture is written as a format (depth, map, colours, alpha, notes)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from convtool.choices import (
    OUTPUT_MAPS,
)
from convtool.errors import UsageError
from convtool.io.formats import (
    MATRIX_DEPTHS,
    MATRIX_FORMATS,
    caps,
    check_lossless,
    format_by_name,
)
from convtool.io.picture import Picture


@dataclass(frozen=True)
class OutputPlan:
    """What will be written: format, sample depth, map, colour layout, and notes for the user.

    ``colors``: ``L``, ``RGB`` or ``CMYK`` for images, ``matrix`` for matrix files;
    ``alpha``: whether an alpha channel is written; ``map_given``: whether the map was asked
    for (``--map``) rather than defaulted — a map asked for clips without a note.
    """

    format: str
    depth: int
    map: str
    colors: str
    alpha: bool
    notes: tuple[str, ...] = ()
    map_given: bool = False
    lossless: bool = False
    """A format of ``FormatCaps.lossless`` written in its lossless mode (``--lossless``)."""

    @property
    def is_matrix(self) -> bool:
        return self.format in MATRIX_FORMATS.values()


def plan_output(
    picture: Picture,
    format: str,
    *,
    depth: int | None = None,
    map: str | None = None,
    lossless: bool = False,
) -> OutputPlan:
    """Decide how ``picture`` is written as ``format``; UsageError for impossible requests.

    ``depth`` defaults to the input's when the format can hold it, else the nearest it can
    (float → 16-bit PNG, 16-bit → 8-bit JPEG), with a note. ``map`` defaults to ``none`` for
    float outputs (a float TIFF, ``.npy``: they hold every value) and ``clip`` for 8- and
    16-bit images; ``none`` needs a float output.
    """
    fmt = format_by_name(format)
    if map is not None and map not in OUTPUT_MAPS:
        raise UsageError(f"unknown map {map!r}; choose one of {', '.join(OUTPUT_MAPS)}")
    if lossless:  # the lossless mode of a format that has two (WebP); refused for the others
        check_lossless(fmt)
        return replace(plan_output(picture, fmt, depth=depth, map=map), lossless=True)
    notes: list[str] = []
    source_depth = picture.depth
    if fmt in MATRIX_FORMATS.values():
        return _plan_matrix(picture, fmt, depth, map)
    colors, has_alpha = _image_layout(picture)
    colors, has_alpha = _fitted_layout(fmt, colors, has_alpha, picture.name, notes)
    chosen = _chosen_depth(fmt, colors, depth, source_depth, notes)
    chosen_map = map or ("none" if chosen == 32 else "clip")
    if chosen_map == "none" and chosen != 32:
        raise UsageError(
            f"--map none keeps raw values, which only a float output holds (--depth 32 with "
            f".tif, or .npy); for a {chosen}-bit {fmt} choose clip, abs or rescale"
        )
    if caps(fmt).palette and colors != "L":
        notes.append(f"{fmt} holds 256 colours: the colours are quantized")
    return OutputPlan(
        fmt, chosen, chosen_map, colors, has_alpha, tuple(notes), map_given=map is not None
    )


def _fitted_layout(
    fmt: str, colors: str, has_alpha: bool, name: str, notes: list[str]
) -> tuple[str, bool]:
    """The colours and alpha ``fmt`` can hold of those asked for, with a note for each loss."""
    held = caps(fmt)
    if has_alpha and not held.alpha:
        notes.append(f"{fmt} has no alpha channel: the alpha channel is dropped")
        has_alpha = False
    if colors == "CMYK" and not held.cmyk:
        notes.append(f"{fmt} holds no CMYK: writing RGB")
        colors = "RGB"
    if colors == "L" and (not held.grey or (has_alpha and not held.grey_alpha)):
        colors = "RGB"  # no grey mode (QOI refused grey), or none with alpha (SGI)
    if colors != "L" and not held.colour:
        raise UsageError(
            f"a .{fmt.lower()} file holds grey and {name or 'the input'} is colour ({colors}); "
            "add --gray for its luminance, or write .ppm"
        )
    return colors, has_alpha


def _chosen_depth(
    fmt: str, colors: str, depth: int | None, source_depth: int, notes: list[str]
) -> int:
    """The depth asked for when ``fmt`` holds it (else UsageError), or the input's, or the
    nearest below it that ``fmt`` holds, with a note."""
    held = caps(fmt)
    allowed = held.depths
    if colors != "L" and held.colour_depths is not None:
        allowed = held.colour_depths  # Pillow writes 16-bit grey PGM, not 16-bit colour PPM
    if depth is not None:
        if depth not in allowed:
            raise UsageError(
                f"--depth {depth}: {_describe(fmt, colors)} holds {_depths(allowed)}; for "
                f"{_depth_name(depth)} samples write {_holders(depth)}"
            )
        return depth
    wanted = 32 if source_depth == 64 else source_depth
    chosen = wanted if wanted in allowed else max(d for d in allowed if d <= wanted)
    if chosen != wanted:
        notes.append(
            f"{_describe(fmt, colors)} holds {_depths(allowed)}: writing {chosen}-bit "
            f"(the input is {_depth_name(wanted)}; --depth chooses)"
        )
    return chosen


def _plan_matrix(picture: Picture, fmt: str, depth: int | None, map: str | None) -> OutputPlan:
    if depth is not None and depth not in MATRIX_DEPTHS:
        raise UsageError(
            f"--depth {depth}: a .{fmt.lower()} file holds floating-point numbers; --depth 8 "
            "and 16 are for image outputs (32 writes float32)"
        )
    chosen = depth or (64 if picture.depth == 64 else 32)
    planes = picture.channels + (1 if picture.alpha is not None else 0)
    if fmt != "NPY" and planes > 1:
        what = "an alpha channel" if picture.alpha is not None else f"{planes} planes"
        raise UsageError(
            f"a .{fmt.lower()} file holds one plane and {picture.name or 'the input'} has "
            f"{what}; write .npy, or use --gray"
            + (" and an image without alpha" if picture.alpha is not None else "")
        )
    return OutputPlan(
        fmt, chosen, map or "none", "matrix", picture.alpha is not None, map_given=map is not None
    )


def _image_layout(picture: Picture) -> tuple[str, bool]:
    """The colours (L, RGB, CMYK) and alpha an image written from ``picture`` has.

    A matrix becomes an image by its planes: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA.
    """
    if not picture.is_matrix:
        return picture.colors, picture.alpha is not None
    planes = picture.channels
    if planes not in (1, 2, 3, 4):
        raise UsageError(
            f"{picture.name}: a matrix with {planes} planes cannot be an image (1 grey, 2 grey + "
            "alpha, 3 RGB or 4 RGBA); write .npy"
        )
    return ("L" if planes <= 2 else "RGB"), planes in (2, 4)


def _describe(fmt: str, colors: str) -> str:
    colour = colors != "L" and caps(fmt).colour_depths is not None
    return f"{'colour ' if colour else ''}{fmt}"


def _depths(depths: tuple[int, ...]) -> str:
    names = [_depth_name(d) for d in depths]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _holders(depth: int) -> str:
    return ".tif or .npy" if depth == 32 else ".png or .tif"


def _depth_name(depth: int) -> str:
    return "float" if depth in (32, 64) else f"{depth}-bit"
