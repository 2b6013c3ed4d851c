"""The machine's description both benchmark scripts start their reports with."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

SIMD = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl")


def cpu_line() -> str:
    """``- CPU: <model>, <n> logical cores (<SIMD flags>), <RAM> GiB RAM`` from /proc."""
    model = "unknown"
    flags: set[str] = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    simd = [f for f in SIMD if f in flags]
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 2**20:.0f} GiB RAM"
    return f"- CPU: {model}, {os.cpu_count()} logical cores ({', '.join(simd) or 'no AVX'}){memory}"
