"""Encoding a picture as the bytes of its output format (the pixel policy has run first)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from convtool.choices import (
    DEFAULT_COMPRESS_LEVEL,
    DEFAULT_QUALITY,
)
from convtool.errors import ImageError
from convtool.io import png
from convtool.io.formats import caps
from convtool.io.matrix import encode_matrix
from convtool.io.picture import JpegCompression, Metadata, Picture, fitting_metadata
from convtool.io.pixels import LAYOUTS, stored_samples
from convtool.io.plan import OutputPlan
from convtool.io.tiff import encode_tiff


def encode(
    picture: Picture,
    plan: OutputPlan,
    *,
    quality: int | None = None,
    compress_level: int | None = None,
    threads: int | None = None,
) -> bytes:
    """The bytes of ``picture`` written as ``plan`` says: map, round to nearest, clamp, encode.
    ``quality``: for JPEG, WebP and AVIF; None writes a JPEG read from a JPEG with the input's
    quantization tables and subsampling, anything else at :data:`DEFAULT_QUALITY` (see
    :func:`_quality_options`). ``compress_level``: zlib's level for PNG (default
    :data:`DEFAULT_COMPRESS_LEVEL`) and TIFF (default: a TIFF input's compression, see
    :func:`~convtool.io.tiff.tiff_compression`). ``threads``: how many a large PNG or a
    compressed TIFF is written on (default: every core)."""
    if plan.is_matrix:
        return encode_matrix(picture, plan)
    stored = stored_samples(picture, plan)
    metadata = fitting_metadata(picture.metadata, plan.colors)
    if plan.format == "TIFF":
        return encode_tiff(stored, plan, metadata, compress_level, threads)
    if compress_level is None:
        compress_level = DEFAULT_COMPRESS_LEVEL
    if plan.format == "PNG" and plan.depth == 16 and stored.ndim == 3 and stored.shape[2] > 1:
        return png.encode_png16(stored, metadata, compress_level)
    return _encode_pillow(stored, plan, metadata, quality, compress_level, threads)


def _pillow_image(stored: np.ndarray, colors: str) -> Any:
    from PIL import Image

    h, w = stored.shape[:2]
    planes = stored.shape[2] if stored.ndim == 3 else 1
    if stored.dtype == np.uint16:
        return Image.fromarray(np.ascontiguousarray(stored.reshape(h, w)))  # I;16 grey
    if colors == "CMYK":
        return Image.frombytes("CMYK", (w, h), np.ascontiguousarray(stored).tobytes())
    mode = LAYOUTS[planes]
    return Image.frombytes(mode, (w, h), np.ascontiguousarray(stored).tobytes())


_LAYOUT_NAMES = {
    "L": "grey",
    "LA": "grey + alpha",
    "RGB": "RGB",
    "RGBA": "RGB + alpha",
    "CMYK": "CMYK",
    "I;16": "16-bit grey",
}


ICO_MAX_SIDE = 256
"""The largest side of an icon in an ICO file."""


def _grey_alpha_gif(stored: np.ndarray) -> tuple[Any, int]:
    """Grey + alpha samples (H, W, 2) as a GIF's palette image and its transparent index.

    Pillow's GIF writer drops the alpha of an ``LA`` image. GIF transparency is on or off: a
    pixel of alpha 0 is transparent, any other opaque. The palette is the grey ramp, so the
    greys are written exactly, with the first grey no opaque pixel uses as the transparent
    index; when all 256 are used, Pillow quantizes the RGBA image instead.
    """
    from PIL import Image

    grey, alpha = stored[..., 0], stored[..., 1]
    used = np.zeros(256, dtype=bool)
    used[grey[alpha > 0]] = True
    free = np.flatnonzero(~used)
    if not free.size:
        rgba = Image.frombytes("LA", grey.shape[::-1], np.ascontiguousarray(stored).tobytes())
        return rgba.convert("RGBA"), 0
    transparent = int(free[0])
    index = np.where(alpha > 0, grey, np.uint8(transparent)).astype(np.uint8)
    im = Image.frombytes("P", grey.shape[::-1], np.ascontiguousarray(index).tobytes())
    im.putpalette(np.repeat(np.arange(256, dtype=np.uint8), 3).tobytes())
    return im, transparent


def _colour_alpha_gif(stored: np.ndarray) -> tuple[Any, int]:
    """RGB + alpha samples (H, W, 4) with transparent pixels as a GIF's palette image and its
    transparent index.

    Pillow quantizes RGBA with alpha among the colours, and transparency survives only when a
    palette entry comes out fully transparent: a few transparent pixels among opaque ones
    were merged away (written opaque, silently). Here the colours are quantized to 255 and
    index 255 is the transparent one, for every pixel of alpha 0 (GIF transparency is on or
    off: any other alpha is opaque).
    """
    from PIL import Image

    height, width = stored.shape[:2]
    rgb = Image.frombytes("RGB", (width, height), np.ascontiguousarray(stored[..., :3]).tobytes())
    quantized = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=255)
    index = np.asarray(quantized).copy()
    index[stored[..., 3] == 0] = 255
    palette = (quantized.getpalette() or [])[: 255 * 3]
    palette += [0] * (256 * 3 - len(palette))
    im = Image.frombytes("P", (width, height), index.tobytes())
    im.putpalette(palette)
    return im, 255


def _encode_pillow(
    stored: np.ndarray,
    plan: OutputPlan,
    metadata: Metadata,
    quality: int | None,
    compress_level: int,
    threads: int | None = None,
) -> bytes:
    if plan.format == "PNG" and stored.dtype == np.uint8 and stored.size >= png.PARALLEL_SAMPLES:
        chunks = png.png_metadata_chunks(metadata)
        return png.encode_png8(stored, compress_level, chunks, threads=threads)
    im = _pillow_image(stored, plan.colors)
    options: dict[str, Any] = {}
    fmt = plan.format
    if caps(fmt).palette and im.mode == "LA":
        im, options["transparency"] = _grey_alpha_gif(stored)
    elif caps(fmt).palette and im.mode == "RGBA" and bool((stored[..., 3] == 0).any()):
        im, options["transparency"] = _colour_alpha_gif(stored)
    options.update(_metadata_options(fmt, metadata))
    if fmt == "PNG":
        if metadata.xmp:
            options["pnginfo"] = png.png_xmp(metadata.xmp)
        options["compress_level"] = compress_level
        options["compress_type"] = png.png_strategy(im, compress_level)
    if fmt == "ICO":
        # Pillow's default writes shrunken copies only (a 40x30 picture read back as 24x18):
        # the picture itself, at its size; above 256 ICO cannot hold it without resizing
        if max(im.size) > ICO_MAX_SIDE:
            raise ImageError(
                f"ICO holds icons of at most {ICO_MAX_SIDE}x{ICO_MAX_SIDE} pixels and the result "
                f"is {im.width}x{im.height} (Pillow would shrink it); write PNG"
            )
        options["sizes"] = [im.size]
    options.update(_quality_options(fmt, quality, metadata.jpeg, lossless=plan.lossless))
    buffer = io.BytesIO()
    try:
        im.save(buffer, format=caps(fmt).pillow or fmt, **options)
    except (OSError, ValueError, KeyError) as exc:
        raise ImageError(
            f"Pillow cannot write {_LAYOUT_NAMES.get(im.mode, im.mode)} as {fmt} ({exc}); write "
            "PNG or TIFF, which hold every layout"
        ) from None
    return buffer.getvalue()


def _metadata_options(fmt: str, metadata: Metadata) -> dict[str, Any]:
    """Pillow's save options for the metadata its writer of ``fmt`` takes (see ``FormatCaps``)."""
    given = {
        "icc": ("icc_profile", metadata.icc_profile),
        "dpi": ("dpi", metadata.dpi),
        "exif": ("exif", metadata.exif),
        "xmp": ("xmp", metadata.xmp),
    }
    return {
        option: value
        for kind, (option, value) in given.items()
        if kind in caps(fmt).metadata and value
    }


def _quality_options(
    fmt: str, quality: int | None, jpeg: JpegCompression | None = None, *, lossless: bool = False
) -> dict[str, Any]:
    """Pillow's save options for ``--quality`` (None: not given) when writing ``fmt``.

    A JPEG from a JPEG input (``jpeg``, its compression) without ``--quality`` is written with
    the input's quantization tables and chroma subsampling, so that filtering does not make
    it larger or smaller by a change of quality (and no ``quality``: Pillow would scale the
    tables by it). Otherwise quality Q, default :data:`DEFAULT_QUALITY`; JPEG at Q ≥ 90 is
    4:4:4 (no chroma subsampling), as ImageMagick writes it. ``lossless`` WebP keeps every
    sample, the colour under transparent pixels too (``exact``); a quality given is then
    libwebp's effort (100: smallest, slowest; Pillow's default 80 otherwise).
    """
    if not caps(fmt).quality:
        return {}
    if fmt == "WEBP" and lossless:
        effort = {} if quality is None else {"quality": quality}
        return {"lossless": True, "exact": True, **effort}
    if fmt == "JPEG" and quality is None and jpeg is not None:
        options: dict[str, Any] = {"qtables": [list(table) for table in jpeg.qtables]}
        if jpeg.subsampling != -1:
            options["subsampling"] = jpeg.subsampling
        return options
    quality = DEFAULT_QUALITY if quality is None else quality
    options = {"quality": quality}
    if fmt == "JPEG" and quality >= 90:
        options["subsampling"] = 0
    return options


def pillow_frame(picture: Picture, plan: OutputPlan) -> Any:
    """``picture`` as a Pillow image of its stored samples: a frame of an animation."""
    return _pillow_image(stored_samples(picture, plan), plan.colors)


_APNG_DISPOSAL = {0: 0, 1: 0, 2: 1, 3: 2}
"""GIF's disposal methods as APNG's dispose_op (none said and keep are both APNG's none)."""


def encode_frames(
    frames: list[Any],
    plan: OutputPlan,
    *,
    durations: list[float] | None = None,
    loop: int | None = 0,
    disposals: list[int] | None = None,
    quality: int | None = None,
    compress_level: int | None = None,
) -> bytes:
    """Pillow images (from :func:`pillow_frame`) as one animated GIF, WebP or PNG.

    ``durations`` in ms, ``loop`` (0: forever, None: once), ``disposals`` in GIF's numbers.
    The frames are whole pictures (Pillow composes an animation's frames when reading), so
    APNG frames replace what is under them (blend: source) whatever their disposal.
    """
    modes = {im.mode for im in frames}
    if len(modes) > 1:  # a GIF's first frame reads as grey and the next as RGB: one mode
        colour = "RGB" if modes & {"RGB", "RGBA"} else "L"
        mode = colour + ("A" if modes & {"LA", "RGBA"} else "")
        frames = [im.convert(mode) for im in frames]
    sizes = sorted({f"{w}x{h}" for w, h in (im.size for im in frames)})
    if len(sizes) > 1:
        raise ImageError(
            f"the pages differ in size ({', '.join(sizes)}) and an animated {plan.format} "
            "holds frames of one size; write .tif, or pick one page with --page N"
        )
    options: dict[str, Any] = {"save_all": True, "append_images": frames[1:]}
    if durations is not None:
        options["duration"] = [max(0, round(d)) for d in durations]
    if loop is not None:
        options["loop"] = loop
    fmt = plan.format
    if disposals is not None and fmt == "GIF":
        options["disposal"] = disposals
    if fmt == "PNG":
        from PIL import PngImagePlugin

        if disposals is not None:
            options["disposal"] = [_APNG_DISPOSAL.get(d, 0) for d in disposals]
            if any(options["disposal"]) and frames[0].mode == "L":
                # Pillow 13 cannot dispose grey APNG frames ("images do not match"): grey
                # with an opaque alpha channel, the same pixels
                frames = [im.convert("LA") for im in frames]
                options["append_images"] = frames[1:]
        options["blend"] = PngImagePlugin.Blend.OP_SOURCE
        level = DEFAULT_COMPRESS_LEVEL if compress_level is None else compress_level
        options["compress_level"] = level
    options.update(_quality_options(fmt, quality, lossless=plan.lossless))
    buffer = io.BytesIO()
    try:
        frames[0].save(buffer, format=caps(fmt).pillow or fmt, **options)
    except (OSError, ValueError, KeyError) as exc:
        raise ImageError(f"Pillow cannot write these frames as an animated {fmt} ({exc})") from None
    return buffer.getvalue()
