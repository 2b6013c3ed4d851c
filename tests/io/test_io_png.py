"""The parallel PNG writer: exact round trips through Pillow's decoder, the row filters against a
plain-Python libpng heuristic, pieces, metadata and determinism."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms

from convtool import compiled
from convtool.io import png as pngwrite
from convtool.io.encode import encode
from convtool.io.picture import Metadata, Picture
from convtool.io.plan import plan_output

jit = compiled.core()  # the numba package, through its gateway


def decode(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im)


def chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    position, found = 8, []
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        data = png[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", png[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + data)
        found.append((kind, data))
        position += 12 + length
    return found


def reference_filter(rows: np.ndarray, bpp: int) -> np.ndarray:
    """Each row filtered by the PNG filter (0–4) whose bytes, read as signed, have the least
    sum of magnitudes; ties to the lower type. Plain loops over Python ints."""
    h, n = rows.shape
    out = np.zeros((h, n + 1), np.uint8)
    for i in range(h):
        cur = [int(v) for v in rows[i]]
        prev = [int(v) for v in rows[i - 1]] if i > 0 else [0] * n
        candidates = []
        for kind in range(5):
            f = []
            for q in range(n):
                a = cur[q - bpp] if q >= bpp else 0
                b = prev[q]
                c = prev[q - bpp] if q >= bpp else 0
                if kind == 0:
                    pred = 0
                elif kind == 1:
                    pred = a
                elif kind == 2:
                    pred = b
                elif kind == 3:
                    pred = (a + b) // 2
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                f.append((cur[q] - pred) % 256)
            candidates.append((sum(min(v, 256 - v) for v in f), kind, f))
        _, kind, f = min(candidates, key=lambda t: (t[0], t[1]))
        out[i, 0] = kind
        out[i, 1:] = f
    return out


def pictures() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:23, 0:31]
    smooth = ((x * 5 + y * 3) % 256).astype(np.uint8)
    return [
        rng.integers(0, 256, (1, 1, 3), dtype=np.uint8),
        rng.integers(0, 256, (1, 9), dtype=np.uint8),
        rng.integers(0, 256, (9, 1, 4), dtype=np.uint8),
        rng.integers(0, 256, (6, 7, 2), dtype=np.uint8),
        smooth,
        np.stack([smooth, smooth[::-1], 255 - smooth], axis=2),
        np.dstack([smooth, (y * 11 % 256).astype(np.uint8), np.full_like(smooth, 200), smooth]),
        np.full((5, 8, 3), 17, np.uint8),
    ]


@pytest.mark.parametrize("index", range(8))
def test_filters_match_the_reference(index: int) -> None:
    """Every row gets the filter type and bytes of the plain-loop heuristic."""
    x = pictures()[index]
    planes = 1 if x.ndim == 2 else x.shape[2]
    rows = np.ascontiguousarray(x).reshape(x.shape[0], -1)
    out = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    jit.png_filter(rows, 0, rows.shape[0], planes, out)
    np.testing.assert_array_equal(out, reference_filter(rows, planes))


def test_every_filter_type_is_chosen_somewhere() -> None:
    """The pictures above exercise all five filters (so the test above checks each)."""
    kinds = set()
    for x in pictures():
        planes = 1 if x.ndim == 2 else x.shape[2]
        kinds |= set(reference_filter(x.reshape(x.shape[0], -1), planes)[:, 0].tolist())
    rng = np.random.default_rng(3)
    ramp = np.cumsum(rng.integers(0, 3, (12, 40)), axis=1).astype(np.uint8)
    kinds |= set(reference_filter(ramp, 1)[:, 0].tolist())
    assert kinds == {0, 1, 2, 3, 4}


@pytest.mark.parametrize("level", [0, 1, 4, 9])
@pytest.mark.parametrize("index", range(8))
def test_round_trip_through_pillow(index: int, level: int) -> None:
    x = pictures()[index]
    png = pngwrite.encode_png8(x, level)
    y = decode(png)
    np.testing.assert_array_equal(y, x.reshape(y.shape))
    kinds = [kind for kind, _ in chunks(png)]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[1 if x.ndim == 2 else x.shape[2]]
    ihdr = chunks(png)[0][1]
    assert struct.unpack(">IIBBBBB", ihdr) == (x.shape[1], x.shape[0], 8, colour, 0, 0, 0)


def test_many_pieces_make_one_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces of a few rows each, one IDAT chunk each: still one valid zlib stream."""
    monkeypatch.setattr(pngwrite, "PIECE_BYTES", 100)
    rng = np.random.default_rng(1)
    x = np.clip(rng.normal(128, 30, (61, 47, 3)), 0, 255).astype(np.uint8)
    png = pngwrite.encode_png8(x, 6)
    np.testing.assert_array_equal(decode(png), x)
    idat = [data for kind, data in chunks(png) if kind == b"IDAT"]
    assert len(idat) > 10
    raw = zlib.decompress(b"".join(idat))
    rows = np.frombuffer(raw, np.uint8).reshape(61, 1 + 47 * 3)
    np.testing.assert_array_equal(rows, reference_filter(x.reshape(61, -1), 3))


def test_bytes_do_not_depend_on_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pngwrite, "PIECE_BYTES", 512)
    x = np.random.default_rng(2).integers(0, 256, (40, 30, 4), dtype=np.uint8)
    many = pngwrite.encode_png8(x, 4)
    monkeypatch.setattr(pngwrite.os, "cpu_count", lambda: 1)
    assert pngwrite.encode_png8(x, 4) == many


def test_strategy_follows_the_sample() -> None:
    """Noise-like rows deflate no larger with Z_RLE; a repeated text-like tile does."""
    rng = np.random.default_rng(4)
    photo = np.clip(rng.normal(0, 6, (256, 300)).cumsum(axis=1) + 128, 0, 255).astype(np.uint8)
    tile = rng.integers(0, 2, (8, 37), dtype=np.uint8) * 255
    text = np.tile(tile, (32, 8))
    for x, expected in ((photo, pngwrite.Z_RLE), (text, pngwrite.Z_DEFAULT_STRATEGY)):
        out = np.empty((x.shape[0], x.shape[1] + 1), np.uint8)
        jit.png_filter(x, 0, x.shape[0], 1, out)
        assert pngwrite.filtered_strategy(out, 4) == expected
        assert pngwrite.filtered_strategy(out, 0) == pngwrite.Z_DEFAULT_STRATEGY


def test_encode_uses_it_for_large_pictures_with_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through ``encode``: ICC profile, DPI and EXIF are kept, the pixels exact."""
    monkeypatch.setattr(pngwrite, "PARALLEL_SAMPLES", 100)
    calls = []
    original = pngwrite.encode_png8
    monkeypatch.setattr(
        pngwrite, "encode_png8", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    x = np.random.default_rng(5).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x010F] = "convtool test"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    metadata = Metadata(icc_profile=icc, dpi=(300.0, 300.0), exif=exif.tobytes())
    picture = Picture(
        x.astype(np.float32) / 255,
        integer_stored=True,
        mode="RGB",
        colors="RGB",
        metadata=metadata,
    )
    plan = plan_output(picture, "PNG")
    png = encode(picture, plan)
    assert calls
    with Image.open(io.BytesIO(png)) as im:
        np.testing.assert_array_equal(np.asarray(im), x)
        assert im.info["icc_profile"] == icc
        assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01)
        assert im.getexif()[0x010F] == "convtool test"


def test_read_only_samples() -> None:
    x = np.random.default_rng(6).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    x.flags.writeable = False
    np.testing.assert_array_equal(decode(pngwrite.encode_png8(x, 4)), x)


def test_threads_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    """``threads`` caps the writer's pool (``apply --threads``); the bytes stay the same."""
    monkeypatch.setattr(pngwrite, "PIECE_BYTES", 256)
    pools = []
    real = pngwrite.ThreadPoolExecutor

    def recording(workers: int) -> object:
        pools.append(workers)
        return real(workers)

    monkeypatch.setattr(pngwrite, "ThreadPoolExecutor", recording)
    x = np.random.default_rng(8).integers(0, 256, (50, 20, 3), dtype=np.uint8)
    one = pngwrite.encode_png8(x, 4, threads=1)
    two = pngwrite.encode_png8(x, 4, threads=2)
    assert pools == [1, 2]
    assert one == two
    np.testing.assert_array_equal(decode(one), x)
