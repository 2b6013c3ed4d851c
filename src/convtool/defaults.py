"""Defaults the command shows in ``--help`` and the library uses: plain numbers, no imports,
so that building the command line loads nothing heavy (see :mod:`convtool.cli`)."""

DEFAULT_MAX_PIXELS = 100_000_000
"""Images with more pixels than this (width × height, 100 megapixels) are refused before they
are decoded — a guard against decompression bombs. ``--max-pixels`` raises it."""

DEFAULT_QUALITY = 95
"""JPEG/WebP quality when none is given (a JPEG written from a JPEG keeps the input's
quantization tables and subsampling instead); at 90 and above JPEG is written 4:4:4."""

DEFAULT_COMPRESS_LEVEL = 4
"""zlib level for PNG (and deflate TIFF). Measured on a 3840×2160 RGB photograph and its Sobel
edge map: level 4 writes in 0.6–1.0 s, files within 5 % of level 6 (Pillow's default, 1.6–2.9 s);
level 1 is 0.4–0.6 s but 18–24 % larger. ``--compress-level`` picks another (0 to 9)."""

DEFAULT_EPOCHS = 100
"""Gradient-descent steps of ``learn --method gd`` when ``--epochs`` is not given."""
