"""numpy twins of the jitted code in ``convtool._jit``, one module per algorithm.

A twin takes the arguments of its jitted namesake and computes the same result bit for bit: the
same taps in the same groups and sums, each operation in the same float type (numba's promotion
of a weight times a sample, which is not always numpy's). It runs while the compiled core is
not in numba's cache yet, so that the first run of a command writes the same bytes as every
later one without waiting for numba to compile; the jitted code is compiled without fastmath's
reassociation and contraction so that its sums are exactly the ones here.
"""
