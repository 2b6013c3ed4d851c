"""Small pictures and files shared by the io tests."""

from __future__ import annotations

import numpy as np
from PIL import Image

from convtool.io.encode import encode
from convtool.io.files import write_atomic
from convtool.io.formats import format_for_path
from convtool.io.picture import Picture
from convtool.io.plan import plan_output

# A small asymmetric pattern: every value differs, so flips and transposes show.
STORED8 = np.array([[0, 51, 102, 255], [1, 128, 200, 254], [17, 34, 68, 136]], dtype=np.uint8)


def rgb8() -> np.ndarray:
    return np.stack([STORED8, 255 - STORED8, STORED8[::-1, ::-1]], axis=-1)


def save(tmp_path, name: str, image: Image.Image, **options) -> str:
    path = tmp_path / name
    image.save(path, **options)
    return str(path)


def write(picture: Picture, path, **plan_options) -> list[str]:
    plan = plan_output(picture, format_for_path(path), **plan_options)
    write_atomic(path, encode(picture, plan))
    return list(plan.notes)


def icc_profile(space: bytes) -> bytes:
    """A minimal ICC header (Pillow and tifffile carry it as opaque bytes)."""
    header = bytearray(128)
    header[0:4] = (128).to_bytes(4, "big")
    header[12:16] = b"mntr"
    header[16:20] = space
    header[36:40] = b"acsp"
    return bytes(header) + b"\0\0\0\0"


def exif_of(raw: bytes) -> Image.Exif:
    """An EXIF block as Pillow reads it."""
    exif = Image.Exif()
    exif.load(raw)
    return exif
