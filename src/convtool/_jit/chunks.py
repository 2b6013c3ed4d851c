"""Chunks of work handed out to numba's threads as they become free.

``prange`` over the chunks themselves divides them among the threads in equal blocks, fixed
in advance (numba's OpenMP layer schedules its loop statically, whatever
``set_parallel_chunksize`` says): on a machine shared with other processes the call then
waits for whichever thread was preempted longest. Here each thread runs one ``prange``
iteration that claims chunk after chunk from a shared counter (an atomic add), so a thread
that gets its core back late finds the work already done by the other. Which thread computes
a chunk never changes its bytes: the chunks are the same either way.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def claim(typingctx, counter):
    """``counter[0]``, incremented atomically: the index of the next chunk to do."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
        return None
    sig = types.int64(counter)

    def codegen(context, builder, signature, args):
        (array,) = args
        ary = context.make_array(signature.args[0])(context, builder, array)
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], ary, [zero])
        return builder.atomic_rmw("add", ptr, ir.Constant(ir.IntType(64), 1), "monotonic")

    return sig, codegen
