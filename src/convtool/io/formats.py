"""What each file format holds: one capability table, and the format a name or a path picks.

Every per-format fact convtool relies on (depths, alpha, grey and CMYK modes, the metadata
Pillow's writer takes, magic bytes, aliases) is one :class:`FormatCaps` entry of
:data:`FORMATS`; formats not listed are Pillow's with :data:`DEFAULT_CAPS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from convtool.errors import UsageError

Magic = tuple[tuple[int, bytes], ...]
"""Byte strings at offsets that a file of a format starts with, all of them."""


@dataclass(frozen=True)
class FormatCaps:
    """What a format holds and how convtool recognises and writes it.

    ``depths``: sample depths (32: float), ``colour_depths`` those of colour pictures when
    fewer; ``alpha``, ``cmyk``, ``grey`` (a grey mode: without it grey is written as RGB),
    ``grey_alpha``, ``colour`` (PGM holds grey only); ``palette``: colours are quantized;
    ``lossless``: a lossless mode beside the lossy one (``--lossless``), ``lossy_only``: no
    lossless mode at all; ``quality``: ``--quality`` applies; ``metadata``: which of ``icc``,
    ``dpi``, ``exif``, ``xmp`` Pillow's writer is given; ``pillow``: Pillow's writer when it is
    another's (PGM: PPM's); ``magic``: ways a file starts, each a :data:`Magic`; ``decoder``:
    ``pillow``, ``tifffile`` or ``numpy``; ``label``: the name in messages; ``aliases``: other
    names for ``--format``; ``suffixes``: extensions convtool maps itself, not through Pillow
    (the commonest outputs among them: told without loading every Pillow plugin);
    ``refused``: why convtool does not write it; ``pages``: how it holds several pictures
    (``"pages"``: a multi-page TIFF, ``"frames"``: an animation), None for one.
    """

    depths: tuple[int, ...] = (8,)
    colour_depths: tuple[int, ...] | None = None
    alpha: bool = True
    cmyk: bool = False
    grey: bool = True
    grey_alpha: bool = True
    colour: bool = True
    palette: bool = False
    lossless: bool = False
    lossy_only: bool = False
    quality: bool = False
    metadata: frozenset[str] = frozenset()
    pillow: str | None = None
    magic: tuple[Magic, ...] = ()
    decoder: str = "pillow"
    label: str | None = None
    aliases: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    refused: str | None = None
    pages: str | None = None


DEFAULT_CAPS = FormatCaps()
"""A format Pillow writes that the table does not list: 8-bit, alpha, grey, no CMYK."""

MATRIX_DEPTHS = (32, 64)
"""The depths of matrix files: float32 and float64."""

FORMATS: dict[str, FormatCaps] = {
    "PNG": FormatCaps(
        depths=(8, 16),
        metadata=frozenset({"icc", "dpi", "exif"}),
        magic=(((0, b"\x89PNG\r\n\x1a\n"),),),
        pages="frames",  # APNG
        suffixes=(".png", ".apng"),
    ),
    "JPEG": FormatCaps(
        alpha=False,
        cmyk=True,
        lossy_only=True,
        quality=True,
        metadata=frozenset({"icc", "dpi", "exif", "xmp"}),
        magic=(((0, b"\xff\xd8\xff"),),),
        aliases=("JPG",),
        suffixes=(".jpg", ".jpeg", ".jpe", ".jfif"),
    ),
    "TIFF": FormatCaps(
        depths=(8, 16, 32),
        cmyk=True,
        metadata=frozenset({"icc", "dpi"}),
        magic=tuple(
            ((0, m),) for m in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
        ),  # classic and BigTIFF, either byte order
        decoder="tifffile",
        aliases=("TIF",),
        pages="pages",
        suffixes=(".tif", ".tiff"),
    ),
    "WEBP": FormatCaps(
        grey=False,
        lossless=True,
        quality=True,
        metadata=frozenset({"icc", "exif", "xmp"}),
        magic=(((0, b"RIFF"), (8, b"WEBP")),),
        label="WebP",
        pages="frames",
    ),
    "AVIF": FormatCaps(lossy_only=True, quality=True),
    "GIF": FormatCaps(palette=True, magic=(((0, b"GIF87a"),), ((0, b"GIF89a"),)), pages="frames"),
    "BMP": FormatCaps(
        alpha=False,
        metadata=frozenset({"dpi"}),
        magic=(((0, b"BM"), (6, bytes(4))),),  # the reserved words are 0
    ),
    "PPM": FormatCaps(depths=(8, 16), colour_depths=(8,), alpha=False, aliases=("PNM",)),
    "PGM": FormatCaps(depths=(8, 16), alpha=False, colour=False, pillow="PPM", suffixes=(".pgm",)),
    "PBM": FormatCaps(
        suffixes=(".pbm",),
        refused=(
            "convtool does not write 1-bit PBM (.pbm holds black and white only); write .pgm "
            "for grey, or .png"
        ),
    ),
    "ICNS": FormatCaps(
        suffixes=(".icns",),
        refused=(
            "convtool does not write ICNS (Pillow resizes the picture to the square icon "
            "sizes); write .png, or .ico for an icon of the result's own size"
        ),
    ),
    "QOI": FormatCaps(grey=False),
    "SGI": FormatCaps(grey_alpha=False),
    "EPS": FormatCaps(alpha=False, cmyk=True),
    "PDF": FormatCaps(alpha=False, cmyk=True),
    "PCX": FormatCaps(alpha=False),
    "SPIDER": FormatCaps(alpha=False),
    "XBM": FormatCaps(alpha=False),
    "MPEG": FormatCaps(alpha=False),
    "NPY": FormatCaps(
        magic=(((0, b"\x93NUMPY"),),), suffixes=(".npy",), depths=MATRIX_DEPTHS, decoder="numpy"
    ),
    "TXT": FormatCaps(aliases=("TEXT",), suffixes=(".txt",), depths=MATRIX_DEPTHS, decoder="numpy"),
    "CSV": FormatCaps(suffixes=(".csv",), depths=MATRIX_DEPTHS, decoder="numpy"),
}
"""Each format's capabilities, by convtool's name for it (Pillow's, or NPY, TXT, CSV, PGM)."""

MATRIX_FORMATS = {
    s: name for name, c in FORMATS.items() if c.decoder == "numpy" for s in c.suffixes
}
"""File suffixes read and written as matrices (raw numbers), with their format names."""

PGM = "PGM"
"""Grey-only Netpbm (``.pgm``, ``--format pgm``): written by Pillow's PPM writer, which picks
P5 or P6 by the colours, so a colour picture is refused rather than written as P6 in a .pgm
(``.ppm`` and ``.pnm`` take any colours)."""

_ALIASES = {alias: name for name, c in FORMATS.items() for alias in c.aliases}
_SUFFIXES = {suffix: name for name, c in FORMATS.items() for suffix in c.suffixes}


def caps(fmt: str) -> FormatCaps:
    """The capabilities of format ``fmt`` (convtool's name for it)."""
    return FORMATS.get(fmt, DEFAULT_CAPS)


def starts_as(head: bytes, fmt: str) -> bool:
    """Whether ``head``, a file's first bytes, starts as format ``fmt`` does (its magic)."""
    return any(
        all(head[at : at + len(value)] == value for at, value in magic) for magic in caps(fmt).magic
    )


def signature(head: bytes) -> str | None:
    """The name (``PNG``, ``WebP``...) of the Pillow format whose magic bytes ``head`` starts
    with, if any."""
    return next(
        (
            c.label or name
            for name, c in FORMATS.items()
            if c.decoder == "pillow" and starts_as(head, name)
        ),
        None,
    )


def format_for_path(path: str | Path) -> str:
    """The output format a file name's extension picks (``.png`` → PNG, ``.npy`` → NPY...)."""
    suffix = Path(path).suffix.lower()
    if suffix in _SUFFIXES:
        own = _SUFFIXES[suffix]
        refused = FORMATS[own].refused
        if refused is not None:
            raise UsageError(f"{str(path)!r}: {refused}")
        return own
    fmt = pillow_extensions().get(suffix) if suffix else None
    if fmt is None:
        from PIL import Image

        readable = Image.registered_extensions().get(suffix) if suffix else None
        if readable is not None:
            raise UsageError(
                f"{str(path)!r}: convtool reads {readable} files but cannot write them; give "
                "the output another extension such as .png, .tif, .jpg, .npy or .txt"
            )
        raise UsageError(
            f"cannot tell the output format from {str(path)!r}: give it an extension such as "
            ".png, .tif, .jpg, .npy or .txt"
        )
    return fmt


def format_by_name(name: str) -> str:
    """A format given by name (``png``, ``jpg``, ``tiff``, ``npy``, ``txt``...) as convtool's."""
    upper = name.strip().lstrip(".").upper()
    upper = _ALIASES.get(upper, upper)
    if upper in FORMATS and FORMATS[upper].suffixes:
        refused = FORMATS[upper].refused
        if refused is not None:
            raise UsageError(f"--format {name}: {refused}")
        return upper
    fmt = pillow_extensions().get("." + upper.lower())
    if fmt is None and upper in set(pillow_extensions().values()):
        fmt = upper
    if fmt is None:
        raise UsageError(
            f"unknown format {name!r}; use png, tiff, jpeg, webp, bmp, gif, ppm, npy, txt or csv"
        )
    return fmt


def pillow_extensions() -> dict[str, str]:
    """Extensions of the formats Pillow can write (``.png`` → ``PNG``)."""
    from PIL import Image

    return {ext: fmt for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE}


_IDENTIFIED_ONLY = ("BUFR", "GRIB", "HDF5", "WMF", "MPEG")
"""Formats Pillow recognises without decoding their pixels (stubs, or a header reader)."""


def image_suffixes() -> frozenset[str]:
    """Extensions of the image files convtool decodes (``.png``, ``.jpg``, ``.tif``...): what
    a directory given as input contributes, besides matrices."""
    from PIL import Image

    return frozenset(
        ext
        for ext, fmt in Image.registered_extensions().items()
        if fmt in Image.OPEN and fmt not in _IDENTIFIED_ONLY
    )


def check_lossless(fmt: str) -> None:
    """``--lossless`` is refused for a format without the two modes, saying what to do."""
    if caps(fmt).lossless:
        return
    if caps(fmt).lossy_only:
        advice = "has no lossless mode: write .webp, or .png or .tif, for an exact result"
    else:
        advice = "has no lossy mode to turn off: leave --lossless out"
    raise UsageError(f"--lossless is WebP's lossless mode, and {fmt} {advice}")
