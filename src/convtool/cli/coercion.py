"""Option values coerced without pydantic, for a fast start.

Typer coerces every option through a pydantic ``TypeAdapter``: importing pydantic and building
the adapters of ``convtool apply``'s options costs more than reading, filtering and writing a
small PNG. The values convtool's options take are plain — strings, decimal integers and
numbers, the exact value of a choice, None — and this module converts those itself, to the
very values Typer's adapters give. Anything else (an invalid value, whose error message is
Typer's, or a kind of option convtool does not use) is handed to Typer's own coercion,
unchanged.

:class:`QuickCommand` and :class:`QuickGroup`, the classes of convtool's commands and of its
application, give each of their parameters a :class:`QuickParam` before the command line is
parsed; nothing of Typer is patched, so other
Typer applications in the same process keep their own coercion.
"""

from __future__ import annotations

import math
import re
from enum import Enum
from typing import Any, get_args, get_origin

from typer.core import TyperCommand, TyperGroup, build_runtime_param

_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")


class _Defer:
    """The marker for values left to Typer's own coercion."""


DEFER = _Defer()


def quick_value(annotation: Any, info: Any, value: Any, *, multiple: bool, ctx: Any) -> Any:
    """``value`` as Typer would coerce it for ``annotation``, or :data:`DEFER`.

    ``info`` is Typer's ParameterInfo (min, max, clamp, case_sensitive, parser); ``multiple``
    whether the option takes several values; ``ctx`` the click context.
    """
    if getattr(info, "parser", None) is not None or getattr(info, "clamp", False):
        return DEFER
    if value is None:
        return () if multiple else None
    if multiple:
        strings = get_origin(annotation) is list and get_args(annotation) == (str,)
        if strings and isinstance(value, (list, tuple)) and all(type(v) is str for v in value):
            return list(value)
        return DEFER
    if annotation is str:
        return value if type(value) is str else DEFER
    if annotation is int:
        if type(value) is str and _INTEGER.match(value):
            try:
                value = int(value)
            except ValueError:  # past Python's 4300 digits: click's own conversion says so
                return DEFER
        if type(value) is not int:
            return DEFER
        low, high = getattr(info, "min", None), getattr(info, "max", None)
        if (low is not None and value < low) or (high is not None and value > high):
            return DEFER
        return value
    if annotation is float:
        if type(value) is str and _NUMBER.match(value):
            value = float(value)
        if type(value) is not float or not math.isfinite(value):
            return DEFER
        low, high = getattr(info, "min", None), getattr(info, "max", None)
        return DEFER if low is not None or high is not None else value
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        if isinstance(value, annotation):
            return value
        plain = (
            getattr(info, "case_sensitive", False)
            and getattr(ctx, "token_normalize_func", None) is None
        )
        if plain and type(value) is str:
            for member in annotation:
                if str(member.value) == value:
                    return member
        return DEFER
    return DEFER


class QuickParam:
    """A Typer runtime parameter: plain values converted here, the rest by Typer's own."""

    def __init__(self, descriptor: Any, build: Any) -> None:
        self.descriptor = descriptor
        self._build = build
        self._full: Any = None

    def full(self) -> Any:
        if self._full is None:
            self._full = self._build(self.descriptor)
        return self._full

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if getattr(self.descriptor, "file_annotation", None) is None:
            multiple = bool(getattr(param, "multiple", False) or getattr(param, "nargs", 1) == -1)
            quick = quick_value(
                self.descriptor.annotation,
                self.descriptor.parameter_info,
                value,
                multiple=multiple,
                ctx=ctx,
            )
            if quick is not DEFER:
                return quick
        return self.full().coerce(value, param=param, ctx=ctx)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.full(), name)


def quicken(params: list[Any]) -> list[Any]:
    """``params``, each Typer parameter given a :class:`QuickParam` (before it builds its own
    coercion, which Typer does lazily on first use)."""
    for param in params:
        if getattr(param, "_runtime_param", False) is None:
            param._runtime_param = QuickParam(param.type_descriptor, build_runtime_param)
    return params


class QuickCommand(TyperCommand):
    """A Typer command whose parameters coerce through :class:`QuickParam`."""

    def get_params(self, ctx: Any) -> Any:
        return quicken(super().get_params(ctx))


class QuickGroup(TyperGroup):
    """The Typer group (the global options) whose parameters coerce through QuickParam."""

    def get_params(self, ctx: Any) -> Any:
        return quicken(super().get_params(ctx))
