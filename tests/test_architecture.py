"""The layout keeps its shape: imports run one way, and no private name crosses a module.

The layers, top to bottom, are those of docs/architecture.md; a module may import from its own
layer's package and from the layers below it, never from a layer above.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "convtool"

LAYERS = (
    ("cli",),
    ("batch",),
    ("dask",),
    ("stream",),
    ("filtering",),
    ("learn",),
    ("core",),
    ("kernels",),
    ("io",),
    ("compiled",),
    ("twins",),
    ("_jit",),
    ("errors", "choices", "bundles"),
)
"""Top to bottom. ``__init__`` and ``__main__`` sit above everything (the public API)."""


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int | None:
    """The index in ``LAYERS`` of a ``convtool.<top>...`` module; None for the package itself."""
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "convtool":
        return None
    for index, names in enumerate(LAYERS):
        if parts[1] in names:
            return index
    return None


def _is_module(package: str, name: str) -> bool:
    """Whether ``from package import name`` names a module: ``_jit`` is the private numba
    package, entered through ``compiled`` only, so naming it is not reaching into a module."""
    base = PACKAGE.parent.joinpath(*package.split("."))
    return (base / f"{name}.py").exists() or (base / name).is_dir()


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, imported names) of every convtool import in ``path``, nested ones too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "convtool":
                found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "convtool":
                    found.append((node.lineno, alias.name, []))
    return found


def test_every_module_has_a_layer():
    """A new top-level module or package is placed in the layers (and the architecture page)."""
    unplaced = [
        _name(p)
        for p in _modules()
        if _name(p) not in ("convtool", "convtool.__main__") and _layer(_name(p)) is None
    ]
    assert unplaced == []


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way(path):
    """A module imports only from its own layer and the layers below it."""
    here = _layer(_name(path))
    if here is None:
        return
    upward = [
        f"line {line}: {module}"
        for line, module, _ in _imports(path)
        if (there := _layer(module)) is not None and there < here
    ]
    assert upward == []


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_name_crosses_a_module(path):
    """``from convtool.x import _y`` is how two modules come to share a private detail."""
    crossing = [
        f"line {line}: {module}.{name}"
        for line, module, names in _imports(path)
        for name in names
        if name.startswith("_") and not name.startswith("__") and not _is_module(module, name)
    ]
    assert crossing == []


def _module_aliases(tree: ast.AST) -> dict[str, str]:
    """Local names bound to convtool modules (``from convtool import compiled``, ``as`` names)."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = PACKAGE.parent.joinpath(*node.module.split("."))
            for a in node.names:
                if (base / f"{a.name}.py").exists() or (base / a.name).is_dir():
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("convtool.") and a.asname:
                    aliases[a.asname] = a.name
    return aliases


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_attribute_of_another_module(path):
    """``module._y`` reaches into another module's private detail as surely as an import."""
    tree = ast.parse(path.read_text(), str(path))
    aliases = _module_aliases(tree)
    reached = [
        f"line {node.lineno}: {aliases[node.value.id]}.{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in aliases
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
    ]
    assert reached == []


def test_jit_imports_nothing_of_convtool():
    """The numba package sits at the bottom: it can be compiled and tested on its own."""
    jit = PACKAGE / "_jit"
    assert jit.is_dir()
    outside = [
        (p.name, m)
        for p in jit.rglob("*.py")
        for _, m, _ in _imports(p)
        if not m.startswith("convtool._jit")
    ]
    assert outside == []
