"""Integer output: the float sums rounded and clamped, and the shape of whichever output a
call writes (float or integer)."""

from __future__ import annotations

import numpy as np

from convtool._jit._options import by_output, leaf


def output_shape(output):
    """(rows, elements per row) of ``output.out`` or ``output.iout`` (see ``by_output``)."""
    raise NotImplementedError("only called from jitted code")


def _output_shape_float(output):
    return output.out.shape[0], output.out.shape[1]


def _output_shape_int(output):
    return output.iout.shape[0], output.iout.shape[1]


by_output(output_shape, _output_shape_float, _output_shape_int)


@leaf
def to_integer(acc, bias, absolute, top, out):
    """``out`` = clamp(round-half-even(acc + bias, or its absolute value), 0, top).

    ``bias`` and ``top`` have the type of ``acc``, so that the loop stays in that precision.
    """
    zero = top - top
    if absolute:
        for q in range(out.shape[0]):
            out[q] = np.rint(min(abs(acc[q] + bias), top))
    else:
        for q in range(out.shape[0]):
            out[q] = np.rint(min(max(acc[q] + bias, zero), top))
