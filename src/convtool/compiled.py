"""When numba's compiled core runs, and what runs while it is not compiled yet.

numba compiles a jitted function for each new combination of argument types, seconds for the
bigger loops, and keeps the machine code in its cache. A call whose specialisation is neither
in this process nor in the cache runs its numpy twin (``convtool.npcore``: the same bytes) and
has the specialisation compiled by a background process at the lowest priority, so that the
first run of a command is about as fast as the later ones. ``CONVTOOL_COMPILE=now`` compiles
in the foreground instead, as plain numba does.

The cache itself: numba keeps it beside the code, else in ``~/.cache/numba``
(``NUMBA_CACHE_DIR`` chooses another place). Where neither is writable (a system-wide install
run by a service account without a home), a private directory under the system's temporary
directory is used instead, so that no run fails for want of a cache.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

POLICY_VARIABLE = "CONVTOOL_COMPILE"
POLICIES = ("background", "now")

compiling_note: Callable[[str], None] | None = None
"""Called once per process, before numba compiles in the foreground (the CLI shows it on a
terminal)."""

_lock = threading.Lock()
_scheduled: set[tuple[str, tuple[Any, ...]]] = set()
_noted = False


def policy() -> str:
    """``background`` (the default) or ``now``, from ``CONVTOOL_COMPILE``."""
    value = os.environ.get(POLICY_VARIABLE, "background").strip().lower() or "background"
    return value if value in POLICIES else "background"


def core() -> ModuleType:
    """``convtool._jit``, imported on first use with a cache directory numba can write to."""
    if "convtool._jit" in sys.modules:
        return sys.modules["convtool._jit"]
    import numba

    if not _cache_locatable():
        numba.config.CACHE_DIR = str(private_cache_dir())  # type: ignore[attr-defined]
    from convtool import _jit

    return _jit


def _cache_locatable() -> bool:
    """Whether one of numba's cache locators finds a writable directory for convtool's source
    (as numba asks them when ``_jit`` is imported: without one, every ``cache=True`` fails)."""
    from numba.core.caching import FunctionCache

    from convtool import npcore  # a module beside ``_jit``: the same locators apply

    if os.environ.get("NUMBA_CACHE_LOCATOR_CLASSES"):
        return True  # the user's own locators
    locators: list[Any] = list(FunctionCache._impl_class._locator_classes)
    for locator in locators:
        try:
            if locator.from_function(_probe, npcore.__file__) is not None:
                return True
        except Exception:  # a locator that cannot tell counts as none
            continue
    return False


def _probe() -> None:
    """A function to ask numba's cache locators about (they look at its source file)."""


def private_cache_dir() -> Path:
    """``<tmp>/convtool-numba-<uid>``, created mode 0700 and owned by this user (another user's
    directory of that name is refused, not shared)."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    path = Path(tempfile.gettempdir()) / f"convtool-numba-{uid}"
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if not path.is_dir() or path.is_symlink() or (hasattr(os, "getuid") and info.st_uid != uid):
        path = Path(tempfile.mkdtemp(prefix="convtool-numba-"))
    return path


def argument_types(function: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """numba's types of ``args``, the key of the specialisation a call needs."""
    return tuple(function.typeof_pyval(a) for a in args)


def ready(function: Any, types: tuple[Any, ...]) -> bool:
    """Whether ``function`` has the specialisation ``types`` in this process or in numba's cache
    (loaded from there if so), i.e. whether a call runs without compiling."""
    if types in function.overloads:
        return True
    try:
        cres = function._cache.load_overload(types, function.targetctx)
        if cres is None:
            return False
        function.targetctx.insert_user_function(cres.entry_point, cres.fndesc, [cres.library])
        function.add_overload(cres)
    except Exception:  # numba's internals moved: compile as plain numba would
        return True
    return True


def choose(
    name: str, args: tuple[Any, ...], twin: Callable[..., None], *, now: bool = False
) -> Callable[..., None]:
    """``_jit.<name>`` when its specialisation for ``args`` is compiled (or ``now``, or the
    policy says so: it is then compiled on its first call); else ``twin``, and the
    specialisation is compiled in the background for later calls."""
    jit = core()
    function = getattr(jit, name)
    types = argument_types(function, args)
    if now or policy() == "now" or ready(function, types):
        if types not in function.overloads:
            notify_compiling()
        return function
    schedule(name, types)
    return twin


def run(name: str, args: tuple[Any, ...], twin: Callable[..., None], *, now: bool) -> None:
    """``choose(name, args, twin, now=now)(*args)``."""
    choose(name, args, twin, now=now)(*args)


def notify_compiling() -> None:
    """Show ``compiling_note`` once per process."""
    global _noted
    with _lock:
        if _noted or compiling_note is None:
            return
        _noted = True
    compiling_note(
        "compiling the filter core for this kind of kernel and image (once; later runs load "
        "it from numba's cache)"
    )


def schedule(name: str, types: tuple[Any, ...]) -> None:
    """Compile ``_jit.<name>`` for ``types`` in a background process (once per process)."""
    with _lock:
        if (name, types) in _scheduled:
            return
        _scheduled.add((name, types))
    env = dict(os.environ)
    import numba

    env["NUMBA_CACHE_DIR"] = str(numba.config.CACHE_DIR or "")  # type: ignore[attr-defined]
    if not env["NUMBA_CACHE_DIR"]:
        del env["NUMBA_CACHE_DIR"]
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "convtool.compiled"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
        assert child.stdin is not None
        child.stdin.write(pickle.dumps([(name, types)]))
        child.stdin.close()
    except (OSError, pickle.PicklingError):
        pass  # no background compile: the next run tries again


def _compile_from_stdin() -> None:
    """The background process: compile what the parent sent, one compile at a time per user."""
    import fcntl

    os.nice(19)
    jobs = pickle.loads(sys.stdin.buffer.read())
    lock = Path(tempfile.gettempdir()) / f"convtool-compile-{os.getuid()}.lock"
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        jit = core()
        for name, types in jobs:
            getattr(jit, name).compile(types)


if __name__ == "__main__":
    _compile_from_stdin()
