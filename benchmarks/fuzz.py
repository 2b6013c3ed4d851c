"""Run the readers' mutation fuzzer (tests/io/test_io_fuzz.py) with a larger budget by hand.

    python benchmarks/fuzz.py --budget 2000 --seed 7

CI runs the same tests with a small budget; each mutant must end in a result or one clean
error, within a time bound, leaving no partial output.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=1000, help="mutants per seed file")
    parser.add_argument("--seed", type=int, default=1, help="the random seed of the mutations")
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    environment = dict(os.environ, CONVTOOL_FUZZ_BUDGET=str(args.budget))
    environment["CONVTOOL_FUZZ_SEED"] = str(args.seed)
    test = root / "tests" / "io" / "test_io_fuzz.py"
    return subprocess.call([sys.executable, "-m", "pytest", str(test), "-q"], env=environment)


if __name__ == "__main__":
    raise SystemExit(main())
