"""Band planning and byte sizes: taller bands for more memory, --memory sizes read and shown."""

from __future__ import annotations

import numpy as np
import pytest

import convtool
from convtool.stream.engine import correlation_stage
from convtool.stream.sizes import format_bytes, parse_bytes, plan_band_rows


def test_memory_budget_chooses_band_height():
    """More memory, taller bands; too little for one row and its halo is a clear error."""
    stages = [correlation_stage(np.ones((15, 15)))]
    small = plan_band_rows((40000, 40000, 3), stages, "reflect", 512 * 2**20)
    large = plan_band_rows((40000, 40000, 3), stages, "reflect", 2 * 2**30)
    assert 10 < small < large <= 40000
    assert plan_band_rows((50, 40), stages, "reflect", 2**30) == 50
    with pytest.raises(convtool.UsageError, match=r"too small .* halo of 14 rows .*--memory"):
        plan_band_rows((40000, 40000, 3), stages, "reflect", 2**20)


def test_wrap_and_chains_need_more_memory_per_band():
    one = [correlation_stage(np.ones((9, 9)))]
    two = [*one, correlation_stage(np.ones((9, 9)))]
    shape = (10000, 5000, 3)
    rows = {
        (len(chain), mode): plan_band_rows(shape, chain, mode, 2**28)
        for chain in (one, two)
        for mode in ("reflect", "wrap")
    }
    assert rows[2, "reflect"] < rows[1, "reflect"]
    assert rows[1, "wrap"] < rows[1, "reflect"]


@pytest.mark.parametrize(
    ("text", "value"),
    [("512M", 512 * 2**20), ("2G", 2 * 2**30), ("1.5GiB", 3 * 2**29), ("100000", 100000),
     ("64k", 65536), ("3 MB", 3 * 2**20), ("1T", 2**40)],
)  # fmt: skip
def test_parse_bytes(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text", ["", "M", "-5M", "lots", "5X", "nanM", "0"])
def test_parse_bytes_refuses(text):
    with pytest.raises(convtool.UsageError, match="memory size"):
        parse_bytes(text)


def test_format_bytes():
    assert format_bytes(256 * 2**20) == "256 MiB"
    assert format_bytes(256 * 2**20, unit=True) == "256M"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(12) == "12 B"
    assert parse_bytes(format_bytes(123456789, unit=True)) >= 123456789
