"""numba's options for convtool's jitted code, set here once, and the helpers that choose
an implementation by argument type when numba compiles a call."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numba as nb
from numba.extending import overload

FASTMATH: set[str] = set()
"""IEEE arithmetic as written: no reassociation, no fused multiply-adds, so that every sum is
exactly the one its numpy twin (``convtool.twins``) computes and a run with an empty cache
writes the bytes a warm one does."""

FASTMATH_REDUCTIONS = {"nsz", "arcp", "contract", "reassoc"}
"""For learn's sums over whole images, which vectorise only when they may be reassociated. Over
stored integer samples every product and partial sum of the normal equations is an integer
below 2**53, exact in any order, which is what learn's twin (``convtool.twins.learn``) relies on."""


def parallel(fn: Callable[..., object]) -> Any:
    """Compile ``fn`` for the thread pool: ``prange`` loops run on every core."""
    return nb.njit(parallel=True, cache=True, fastmath=FASTMATH, nogil=True)(fn)


def parallel_reductions(fn: Callable[..., object]) -> Any:
    """``parallel`` for loops that sum over whole images (``FASTMATH_REDUCTIONS``)."""
    return nb.njit(parallel=True, cache=True, fastmath=FASTMATH_REDUCTIONS, nogil=True)(fn)


def serial(fn: Callable[..., object]) -> Any:
    """Compile a helper that the parallel loops call (inlined into them)."""
    return nb.njit(cache=True, fastmath=FASTMATH, nogil=True, inline="always")(fn)


def overload_by(stub: Callable[..., object], pick: Callable[[dict[str, Any]], Any]) -> None:
    """Implement ``stub`` in jitted code by ``pick({argument name: its numba type})``, chosen
    when numba compiles a call (the choosers below say on what)."""
    signature = inspect.signature(stub)
    names = list(signature.parameters)

    def choose(*args: Any) -> Any:
        return pick(dict(zip(names, args, strict=True)))

    choose.__signature__ = signature  # type: ignore[attr-defined]
    overload(stub, jit_options={"fastmath": FASTMATH, "nogil": True}, inline="never")(choose)


def field(bundle: Any, name: str) -> Any:
    """The numba type of field ``name`` of a named tuple's numba type ``bundle``."""
    return bundle[bundle.fields.index(name)]


def by_kind(stub: Callable[..., object], impls: tuple[Callable[..., object], ...]) -> None:
    """Implement ``stub`` in jitted code by ``impls[len(kind)]``, ``kind`` being its argument of
    that name: a tuple whose length, part of its type, selects the implementation when numba
    compiles, so that only the one in use is compiled (numba compiles a function again into
    every caller it is linked into: the unused ones cost seconds for nothing). A type rather
    than a literal value: a literal makes every call from Python take numba's slow path. An
    argument of its own, not a field of ``bundles.DirectTaps``: numba's parallel loops take no
    tuple inside a tuple."""

    def pick(types: dict[str, Any]) -> Any:
        kind = types["kind"]
        return impls[len(kind)] if isinstance(kind, nb.types.BaseTuple) else None

    overload_by(stub, pick)


def by_output(
    stub: Callable[..., object], to_float: Callable[..., object], to_int: Callable[..., object]
) -> None:
    """Implement ``stub`` in jitted code by ``to_float`` when ``output.iout`` is None, its
    argument ``output`` a ``bundles.Output`` (the output is the float array ``output.out``),
    else by ``to_int`` (``out`` is None, the output the integer array ``iout``): chosen by type
    when numba compiles, so that each compiles only what it uses (numba prunes ``x is None``
    branches only where x is None)."""

    def pick(types: dict[str, Any]) -> Any:
        iout = field(types["output"], "iout")
        return to_float if isinstance(iout, nb.types.NoneType) else to_int

    overload_by(stub, pick)


def by_source(
    stub: Callable[..., object], in_place: Callable[..., object], converted: Callable[..., object]
) -> None:
    """Implement ``stub`` in jitted code by ``in_place`` when its argument ``src`` has the
    dtype of the weights ``taps.hw`` (float samples, read where they are), else by
    ``converted`` (integer samples, converted to floats first): chosen by type when numba
    compiles, so that the integer path does not compile the loops over integer rows (a slower
    cold start) for the little the conversion costs."""

    def pick(types: dict[str, Any]) -> Any:
        same = types["src"].dtype == field(types["taps"], "hw").dtype
        return in_place if same else converted

    overload_by(stub, pick)


def leaf(fn: Callable[..., object]) -> Any:
    """Compile a helper on its own, called (not inlined): an innermost vector loop gets its
    registers to itself, and a chunk of work is compiled once (numba's parallel passes, slow on
    big loop bodies, only see the short ``prange`` loop that calls it)."""
    return nb.njit(cache=True, fastmath=FASTMATH, nogil=True)(fn)
