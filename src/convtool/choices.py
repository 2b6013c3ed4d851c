"""Vocabularies and defaults the command shows in ``--help`` and the library uses.

Plain tuples and numbers with no imports, so that building the command line loads nothing
heavy; the CLI's choices are made from these, and each check in the library reads them.
"""

BORDER_CODES = {"reflect": 0, "mirror": 1, "nearest": 2, "wrap": 3, "constant": 4}
"""scipy.ndimage's border modes and the integer the jitted core knows each by."""

BORDERS: tuple[str, ...] = (*BORDER_CODES, "valid")
"""Every ``border=``: scipy's modes, and ``valid`` (no padding: the output shrinks)."""

METHODS = ("auto", "direct", "separable", "fft")
"""How ``correlate`` computes: ``auto`` picks the cheapest exact path."""

INTEGER_MAPS = ("clip", "abs")
"""How ``correlate_to_integer`` maps a result to the output range before clamping it."""

OUTPUT_MAPS = ("clip", "abs", "rescale", "none")
"""How results become stored values (``--map``)."""

ALPHA_MODES = ("auto", "keep", "filter")
"""What ``--alpha`` does with transparency."""

COMBINE_MODES = ("magnitude", "sum", "max", "min", "maxabs")
"""How ``--combine`` merges the responses of kernels applied side by side."""

LEARN_METHODS = ("lstsq", "gd")
CHANNEL_MODES = ("shared", "per", "mix")
"""learn's ``--channels``: ``shared``, one kernel for every channel; ``per``, one kernel and
bias per channel; ``mix``, a full layer of C_out × C_in kernels and a bias per output."""
"""How ``learn`` fits: exact least squares or the textbook's gradient descent."""

DEFAULT_MAX_PIXELS = 100_000_000
"""Images with more pixels than this (width × height, 100 megapixels) are refused before they
are decoded — a guard against decompression bombs. ``--max-pixels`` raises it."""

DEFAULT_QUALITY = 95
"""JPEG/WebP quality when none is given (a JPEG written from a JPEG keeps the input's
quantization tables and subsampling instead); at 90 and above JPEG is written 4:4:4."""

DEFAULT_COMPRESS_LEVEL = 4
"""zlib level for PNG (and deflate TIFF): near level 6's size at a fraction of its time
(benchmarks/RESULTS-cli.md). ``--compress-level`` picks another (0 to 9). A TIFF written from
a TIFF without it keeps the input's compression (uncompressed stays uncompressed)."""

DEFAULT_EPOCHS = 100
"""Gradient-descent steps of ``learn --method gd`` when ``--epochs`` is not given."""
