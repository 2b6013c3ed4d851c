"""A 3→3 layer against its nine 2-D correlations run one by one through the core.

    python benchmarks/layer.py                   # writes benchmarks/RESULTS-layer.md
    python benchmarks/layer.py --repeat 9 --output /tmp/r.md

The image is a 3840×2160 RGB float32 image (random values in [0, 1]); the layer has 3×3
kernels of 5×5 with distinct random entries (no pair separable), and, as a second case, a
per-channel layer of three different 9×9 Gaussians (separable: ``auto`` takes the core's
separable path for each). "Nine 2-D correlations" is what a layer costs without
``correlate_layer``: ``convtool.correlate`` of each input plane (contiguous, prepared outside
the timing) with each K[o, i], outputs left apart (not even summed). The target: the layer
within 1.5× of that. Both run once to warm up (numba's cache), then ``--repeat`` rounds in
alternating order; medians are reported, with the outputs compared against the planes'
correlations summed in float64.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from machine import cpu_line

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from convtool import correlate  # noqa: E402
from convtool.core.layer import correlate_layer  # noqa: E402
from convtool.kernels.builtins import gaussian  # noqa: E402
from convtool.kernels.layer import Layer  # noqa: E402

WIDTH, HEIGHT = 3840, 2160
TARGET = 1.5


def _median_ms(runs: list[float]) -> float:
    return statistics.median(runs) * 1e3


def _time(calls: list[Callable[[], object]], repeat: int) -> list[list[float]]:
    for call in calls:
        call()
    times: list[list[float]] = [[] for _ in calls]
    for r in range(repeat):
        order = list(range(len(calls)))
        if r % 2:
            order.reverse()
        for i in order:
            time.sleep(0.05)
            t0 = time.perf_counter()
            calls[i]()
            times[i].append(time.perf_counter() - t0)
    return times


def case(name: str, x: np.ndarray, layer: Layer, repeat: int) -> str:
    planes = [np.ascontiguousarray(x[..., i]) for i in range(x.shape[2])]
    pairs = [
        (o, i)
        for o in range(layer.outputs)
        for i in range(layer.inputs)
        if layer.kernel(o, i).any()
    ]

    def separately() -> list[np.ndarray]:
        return [correlate(planes[i], layer.kernel(o, i)) for o, i in pairs]

    got = correlate_layer(x, layer)
    parts = separately()
    expected = np.zeros(got.shape)
    for (o, _), part in zip(pairs, parts, strict=True):
        expected[..., o] += part
    expected += layer.biases
    error = float(np.abs(got - expected).max())
    t_layer, t_apart = _time([lambda: correlate_layer(x, layer), separately], repeat)
    a, b = _median_ms(t_layer), _median_ms(t_apart)
    ratio = a / b
    verdict = "met" if ratio <= TARGET else "NOT met"
    return (
        f"| {name} | {a:.1f} | {len(pairs)} correlations apart | {b:.1f} | {ratio:.3f} | "
        f"≤ {TARGET}: {verdict} | outputs agree (max |Δ| {error:.2g}) |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS-layer.md")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    rng = np.random.default_rng(0)
    x = rng.random((HEIGHT, WIDTH, 3), dtype=np.float32)
    mix = Layer(rng.standard_normal((3, 3, 5, 5)), [0.1, 0.2, 0.3], "random 5x5")
    lens = Layer(np.stack([gaussian(s, 9) for s in (1.0, 1.5, 2.0)]), None, "gaussians 9x9")
    rows = [
        case("3→3 layer, random 5×5", x, mix, args.repeat),
        case("per channel, Gaussians 9×9 σ 1, 1.5, 2", x, lens, args.repeat),
    ]
    import numba

    report = [
        "# convtool layer benchmark",
        "",
        f"Written by `benchmarks/layer.py` on {datetime.date.today()}, {args.repeat} rounds.",
        "",
        cpu_line(),
        f"- Python {platform.python_version()}, numpy {np.__version__}, numba "
        f"{numba.__version__}, {numba.get_num_threads()} numba threads",
        f"- image: {WIDTH}×{HEIGHT} RGB float32",
        f"- load average when it started: {load:.2f} (other processes share the cores: "
        "compare ratios, not times)",
        "",
        "| case | correlate_layer ms | against | ms | ratio | target | notes |",
        "| --- | ---: | --- | ---: | ---: | --- | --- |",
        *rows,
        "",
    ]
    args.output.write_text("\n".join(report))
    sys.stdout.write("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
