"""The choices the commands offer, as the ``str`` Enums Typer shows and checks, made from the
library's vocabularies in :mod:`convtool.choices` (one list of each)."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, TypeAlias, cast

from convtool.choices import ALPHA_MODES, BORDERS, COMBINE_MODES, LEARN_METHODS, OUTPUT_MAPS

DEPTHS = ("8", "16", "32")
"""``--depth``: bits per sample of the output; 32 is float."""


def choice(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A ``str`` Enum named ``name`` with one member per value, named as its value."""
    return cast("type[Enum]", Enum(name, [(value, value) for value in values], type=str))


if TYPE_CHECKING:  # the checker sees one Enum type: the members are made at run time

    class Choice(str, Enum):
        """A choice of an option."""

    BorderChoice: TypeAlias = Choice
    MapChoice: TypeAlias = Choice
    AlphaChoice: TypeAlias = Choice
    DepthChoice: TypeAlias = Choice
    MethodChoice: TypeAlias = Choice
    CombineChoice: TypeAlias = Choice
else:
    BorderChoice = choice("BorderChoice", BORDERS)
    MapChoice = choice("MapChoice", OUTPUT_MAPS)
    AlphaChoice = choice("AlphaChoice", ALPHA_MODES)
    DepthChoice = choice("DepthChoice", DEPTHS)
    MethodChoice = choice("MethodChoice", LEARN_METHODS)
    CombineChoice = choice("CombineChoice", COMBINE_MODES)

DEFAULT_BORDER = BorderChoice("reflect")
DEFAULT_ALPHA = AlphaChoice("auto")
DEFAULT_METHOD = MethodChoice("lstsq")
"""The defaults the commands show, the library's own."""
