"""The package's API names: ``convtool.correlate`` and ``convolve`` stay the functions."""

from __future__ import annotations

import subprocess
import sys

IMPORT_EVERYTHING = """
import importlib, pkgutil, types
import convtool
names = [m.name for m in pkgutil.walk_packages(convtool.__path__, "convtool.")]
assert "convtool.core.correlate" in names, names
for name in names:
    importlib.import_module(name)
for api in ("correlate", "convolve"):
    value = getattr(convtool, api)
    assert not isinstance(value, types.ModuleType), (api, value)
    assert callable(value) and value.__module__ == "convtool.core.correlate", (api, value)
print("ok")
"""


def test_importing_every_submodule_keeps_correlate_and_convolve_the_functions():
    """No submodule is named like an API function: after every submodule is imported,
    ``convtool.correlate`` and ``convtool.convolve`` are still the functions."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
