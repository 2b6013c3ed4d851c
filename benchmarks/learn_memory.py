"""Peak memory and time of ``learn_kernel`` on a large pair: the patch matrix is never built.

Fits a 7×7 kernel on a 4000×4000 float32 image (64 MB) and its blurred copy (another 64 MB).
The (pixels × kh·kw) patch matrix that a textbook least-squares fit builds would hold
15 976 036 × 49 values: 3.1 GB in float32, 6.3 GB in float64. This script reports the growth
of the peak resident memory (Linux ``VmHWM``, reset through ``/proc/self/clear_refs`` before
each fit) and the wall time, for ``lstsq`` and for a few epochs of ``gd``.

    python benchmarks/learn_memory.py [--size 4000] [--kernel 7] [--epochs 3]

Each method runs in a fresh process (so one's peak does not hide the other's), after a small
warm-up fit that loads the compiled numba code.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np
from convtool import correlate, learn_kernel, parse_kernel

SPEC = "gaussian:sigma=1.5,size=7"

side, k, method, epochs = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
options = {"method": "gd", "epochs": epochs, "seed": 0} if method == "gd" else {}

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)

rng = np.random.default_rng(0)
small = rng.random((64, 64), dtype=np.float32)
learn_kernel(small, small, k, **options)          # warm-up: load the compiled code
x = rng.random((side, side), dtype=np.float32)
y = correlate(x, SPEC)                             # float32, same size
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")                                   # reset the peak (VmHWM) to the current RSS
before = status("VmRSS:")
start = time.perf_counter()
result = learn_kernel(x, y, k, **options)
seconds = time.perf_counter() - start
peak = status("VmHWM:")
print(json.dumps({
    "method": method, "seconds": seconds, "rss_before": before, "peak": peak,
    "images": x.nbytes + y.nbytes, "pixels_used": result.pixels_used,
    "max_weight_error": float(np.abs(result.weights - parse_kernel(SPEC)).max())
    if k == 7 else None,
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=4000, help="image side (default 4000)")
    parser.add_argument("--kernel", type=int, default=7, help="kernel side (default 7)")
    parser.add_argument("--epochs", type=int, default=3, help="gd epochs (default 3)")
    args = parser.parse_args()
    mb = 2**20
    patch = (args.size - args.kernel + 1) ** 2 * args.kernel**2
    print(
        f"{args.kernel}x{args.kernel} kernel on {args.size}x{args.size} float32; a patch "
        f"matrix would be {patch * 4 / mb:,.0f} MB (float32), {patch * 8 / mb:,.0f} MB (float64)"
    )
    print(f"{'method':<12}{'time (s)':>10}{'peak growth (MB)':>18}{'images (MB)':>13}")
    for method in ("lstsq", "gd"):
        run = subprocess.run(
            [sys.executable, "-c", CHILD, str(args.size), str(args.kernel), method,
             str(args.epochs)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        r = json.loads(run.stdout)
        label = method if method == "lstsq" else f"gd ({args.epochs} ep.)"
        growth = (r["peak"] - r["rss_before"]) / mb
        print(f"{label:<12}{r['seconds']:>10.2f}{growth:>18.1f}{r['images'] / mb:>13.0f}")
        if r["max_weight_error"] is not None and method == "lstsq":
            print(f"{'':<12}largest weight error against the Gaussian: {r['max_weight_error']:.1e}")


if __name__ == "__main__":
    main()
