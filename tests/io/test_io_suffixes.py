"""The output extensions convtool tells itself are Pillow's, and telling them is cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image

from convtool.io.formats import FORMATS, format_for_path


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF"])
def test_own_suffixes_are_pillows(fmt):
    """The same extensions as Pillow registers for the format, no more, no fewer."""
    pillows = {ext for ext, name in Image.registered_extensions().items() if name == fmt}
    assert set(FORMATS[fmt].suffixes) == pillows
    for ext in pillows:
        assert format_for_path(f"out{ext.upper()}") == fmt


def test_naming_a_common_output_loads_no_pillow_plugin():
    """``-o out.jpg`` (or .png, .tif) is told from convtool's table: Pillow's plugins, which
    its registry of extensions imports all at once, stay unloaded."""
    code = (
        "import sys\n"
        "from convtool.io.formats import format_for_path\n"
        "print([format_for_path(n) for n in ('a.png', 'b.JPG', 'c.tiff')])\n"
        "print(sorted(m for m in sys.modules if m.startswith('PIL.') and 'Plugin' in m))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    told, plugins = done.stdout.splitlines()
    assert told == "['PNG', 'JPEG', 'TIFF']"
    assert plugins == "[]", plugins
