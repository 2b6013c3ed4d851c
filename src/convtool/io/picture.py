"""The picture model: :class:`Picture` (float planes or stored samples, with what writing
them back needs), its :class:`Metadata`, and the reading guard :func:`check_pixels`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np

from convtool.errors import ImageError


@dataclass(frozen=True)
class JpegCompression:
    """How a JPEG input was compressed, for a JPEG output written without ``--quality``.

    ``qtables``: its quantization tables as Pillow reads them (``im.quantization``, in table
    order); ``subsampling``: Pillow's ``JpegImagePlugin.get_sampling``: 0 4:4:4, 1 4:2:2,
    2 4:2:0, -1 none (grey, CMYK) or another.
    """

    qtables: tuple[tuple[int, ...], ...]
    subsampling: int


@dataclass(frozen=True)
class Metadata:
    """What convtool carries from input to output besides the pixels.

    ``exif`` is the EXIF block as Pillow writes it, with the orientation already applied to the
    pixels and therefore reset (the tag removed); ``dpi`` is (x, y) dots per inch; ``xmp`` the
    XMP packet (ratings, keywords, captions...), its ``tiff:Orientation`` removed likewise;
    ``jpeg`` a JPEG input's compression (see :class:`JpegCompression`); ``tiff_compression``
    a TIFF input's Compression tag (1 none, 5 LZW, 8 deflate...), which a TIFF output written
    without ``--compress-level`` keeps.
    """

    icc_profile: bytes | None = None
    dpi: tuple[float, float] | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    jpeg: JpegCompression | None = None
    tiff_compression: int | None = None

    @property
    def icc_color_space(self) -> str | None:
        """The ICC profile's colour space signature (``'RGB'``, ``'GRAY'``, ``'CMYK'``...)."""
        if not self.icc_profile or len(self.icc_profile) < 20:
            return None
        return self.icc_profile[16:20].decode("latin-1").strip()


@dataclass(frozen=True, eq=False)
class Picture:
    """An image or a matrix as float planes, with what writing it back needs.

    ``data``: images float32 (H, W, C) in [0, 1] (C = 1 grey, 3 RGB, 4 CMYK; alpha not
    included); matrices float64 (H, W), or (H, W, C) from a 3-D ``.npy``, raw numbers.
    ``alpha``: float32 (H, W) in [0, 1] or None (always None for matrices). An image's
    ``data`` and ``alpha`` may instead be uint8 or uint16 *samples*, each standing for the value
    sample / 255 or / 65535 (:func:`read_picture` with ``samples=True``, the fused output of
    :func:`convtool.filtering.filter_picture`); :func:`to_unit` turns them into floats.
    ``integer_stored``: True for 8- and 16-bit images; their stored values 0 and 1.0 are the
    clipping extremes. ``depth``: bits per stored sample: 8, 16, 32 (float32) or 64 (float64
    matrices). ``format``: Pillow's format name (``PNG``, ``JPEG``, ``TIFF``...) or ``NPY``,
    ``TXT``, ``CSV``. ``mode``: the source's Pillow mode (``L``, ``RGBA``, ``I;16``...; for
    TIFF read by tifffile the equivalent; ``matrix`` for matrices). ``colors``: what the
    channels of ``data`` are: ``L``, ``RGB``, ``CMYK``, or ``matrix``. ``notes``: what reading
    decided for the user (only the first frame of an animation, 1-bit read as 8-bit grey), one
    sentence each naming the source, for the command to print.
    """

    data: np.ndarray
    alpha: np.ndarray | None = None
    is_matrix: bool = False
    integer_stored: bool = False
    depth: int = 8
    format: str = "PNG"
    mode: str = "L"
    colors: str = "L"
    metadata: Metadata = field(default_factory=Metadata)
    name: str = ""
    notes: tuple[str, ...] = ()

    @property
    def height(self) -> int:
        return int(self.data.shape[0])

    @property
    def width(self) -> int:
        return int(self.data.shape[1])

    @property
    def channels(self) -> int:
        """Colour channels in ``data`` (alpha not counted); 1 for a 2-D matrix."""
        return int(self.data.shape[2]) if self.data.ndim == 3 else 1

    def with_planes(self, data: np.ndarray, alpha: np.ndarray | None) -> Picture:
        """The same picture (format, depth, metadata) with new planes, e.g. filtered ones."""
        return replace(self, data=data, alpha=alpha)


def check_pixels(width: int, height: int, name: str, limit: int) -> None:
    if width * height > limit:
        raise ImageError(
            f"{name}: {width}x{height} is {width * height:,} pixels, more than the limit of "
            f"{limit:,} (a guard against decompression bombs); if you trust the file, raise it "
            f"with --max-pixels {width * height}"
        )


_XMP_ORIENTATION = re.compile(
    rb'\s*tiff:Orientation\s*=\s*["\'][0-9]*["\']|<tiff:Orientation>[^<]*</tiff:Orientation>'
)


def xmp_upright(xmp: bytes | None) -> bytes | None:
    """The XMP packet without its orientation (the pixels are written upright), as Pillow's
    ``exif_transpose`` removes it; None for none or a packet that is not bytes."""
    if not isinstance(xmp, bytes | bytearray) or not xmp:
        return None
    return _XMP_ORIENTATION.sub(b"", bytes(xmp))


def fitting_metadata(metadata: Metadata, colors: str) -> Metadata:
    """Drop an ICC profile whose colour space does not match the colours written."""
    space = metadata.icc_color_space
    expected = {"L": "GRAY", "RGB": "RGB", "CMYK": "CMYK"}.get(colors)
    if space is not None and space != expected:
        return replace(metadata, icc_profile=None)
    return metadata
