"""Write the small synthetic images in ``sample_images/`` that the README and the tests use.

    python3 docs/make_samples.py            # (re)writes them into sample_images/
    python3 docs/make_samples.py OUT_DIR    # or anywhere else

Every file is a pure function of this script (no randomness), so ``tests/test_docs.py`` can
check that the committed files are exactly what it makes.

- ``textbook-6x8.txt`` / ``textbook-6x8.png``: the image of "Convolutions for Images" (Dive into
  Deep Learning, 7.2): 6 rows of ``1 1 0 0 0 0 1 1`` — white (1, 255) with a black band in
  columns 2 to 5;
- ``textbook-8x6.txt``: its transpose (the book's ``X.t()``), 8 rows of 6;
- ``step-edge.png``: 32×32 grey, black in the left half and white in the right half (columns
  16 to 31): one rising vertical edge;
- ``checkerboard.png``: 160×160 grey, 20-pixel squares, black in the top-left corner: rising and
  falling edges in both directions.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"


def textbook_image() -> np.ndarray:
    """The book's ``X = torch.ones((6, 8)); X[:, 2:6] = 0``."""
    x = np.ones((6, 8))
    x[:, 2:6] = 0
    return x


def step_edge(size: int = 32) -> np.ndarray:
    """8-bit grey: black left half, white right half."""
    img = np.zeros((size, size), np.uint8)
    img[:, size // 2 :] = 255
    return img


def checkerboard(size: int = 160, square: int = 20) -> np.ndarray:
    """8-bit grey checkerboard, black square in the top-left corner."""
    idx = np.arange(size) // square
    return np.where((idx[:, None] + idx[None, :]) % 2 == 1, 255, 0).astype(np.uint8)


def matrix_text(values: np.ndarray) -> str:
    """Rows of whole numbers separated by spaces, as ``convtool apply ... -o -`` prints them."""
    return "".join(" ".join(f"{v:g}" for v in row) + "\n" for row in values)


def write_samples(out_dir: Path) -> list[Path]:
    """Write every synthetic sample into ``out_dir``; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    x = textbook_image()
    written = []
    texts = {"textbook-6x8.txt": x, "textbook-8x6.txt": x.T}
    for name, values in texts.items():
        path = out_dir / name
        path.write_text(matrix_text(values), encoding="ascii")
        written.append(path)
    images = {
        "textbook-6x8.png": (x * 255).astype(np.uint8),
        "step-edge.png": step_edge(),
        "checkerboard.png": checkerboard(),
    }
    for name, pixels in images.items():
        path = out_dir / name
        Image.fromarray(pixels, mode="L").save(path, optimize=True)
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0]) if argv else SAMPLES
    for path in write_samples(out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
