"""When numba's compiled core runs, and what runs while it is not compiled yet.

numba compiles a jitted function for each new combination of argument types, seconds for the
bigger loops, and keeps the machine code in its cache. Under the ``background`` policy (the
command's) a call whose specialisation is neither in this process nor in the cache runs its
numpy twin (``convtool.twins``: the same bytes) and has the specialisation compiled into the
cache by a background process at the lowest priority once this one has ended, so that the
first run of a command is about as fast as the later ones. Under ``now`` (the Python API's
default, plain numba) the first call compiles. ``CONVTOOL_COMPILE`` chooses either; a run
(the command's) states its own with :func:`configured`.

Loading numba at all (importing it, then its cached machine code) takes a process far longer
than a 3×3 filter of a large photograph. A short run (the command's, see :func:`configured`)
therefore runs the twins of calls that say their ``work`` until that work adds up to
:data:`TWIN_BUDGET`, and loads numba only past it: a command with little work never pays for
numba, one with much pays at most about twice what it had to. The bytes are the same.

The cache itself: numba keeps it beside the code, else in ``~/.cache/numba``
(``NUMBA_CACHE_DIR`` chooses another place). Where neither is writable (a system-wide install
run by a service account without a home), a private directory under the system's temporary
directory is used instead, so that no run fails for want of a cache.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from types import ModuleType
from typing import Any

POLICY_VARIABLE = "CONVTOOL_COMPILE"
POLICIES = ("background", "now")

_policy: ContextVar[str | None] = ContextVar("convtool_compile_policy", default=None)
_note: ContextVar[Callable[[str], None] | None] = ContextVar("convtool_compiling", default=None)
_short: ContextVar[bool] = ContextVar("convtool_short_run", default=False)

_lock = threading.Lock()
_scheduled: set[tuple[str, tuple[Any, ...]]] = set()
_child: subprocess.Popen[bytes] | None = None
_noted = False
_twin_work = 0.0

TWIN_BUDGET = 6e8
"""Multiply-adds (a call's ``work``) a short run does in the numpy twins before it loads numba:
about what the twins do while a process imports numba and loads its cached machine code."""

JIT_PACKAGE = Path(__file__).resolve().parent / "_jit"
"""Where the numba package's sources are (numba caches its machine code beside them)."""


def policy_from_environment(default: str = "now") -> str:
    """``CONVTOOL_COMPILE`` when it names a policy, else ``default``."""
    value = os.environ.get(POLICY_VARIABLE, "").strip().lower()
    return value if value in POLICIES else default


def policy() -> str:
    """The policy of the run in progress (see :func:`configured`); outside one, the
    environment's, by default ``now`` (plain numba: compile on the first call)."""
    chosen = _policy.get()
    return chosen if chosen is not None else policy_from_environment()


@contextmanager
def configured(
    *, policy: str, note: Callable[[str], None] | None = None, short: bool = False
) -> Iterator[None]:
    """Within (in this thread, and in threads started in a copy of its context): ``policy``,
    ``note`` called once per process before numba compiles in the foreground, and whether
    this is a ``short`` run, one process doing one piece of work (the command), whose small
    work runs the twins rather than load numba (:data:`TWIN_BUDGET`)."""
    tokens = (_policy.set(policy), _note.set(note), _short.set(short))
    try:
        yield
    finally:
        _short.reset(tokens[2])
        _note.reset(tokens[1])
        _policy.reset(tokens[0])


def loaded() -> bool:
    """Whether this process has loaded the numba core (``convtool._jit``)."""
    return "convtool._jit" in sys.modules


def thread_count() -> int:
    """The threads numba's parallel loops run on: ``numba.get_num_threads()`` once numba is
    loaded; before, the count numba starts with (``NUMBA_NUM_THREADS``, else the usable
    cores), told without loading numba."""
    if loaded():
        import numba

        return int(numba.get_num_threads())
    with contextlib.suppress(ValueError):
        return max(1, int(os.environ.get("NUMBA_NUM_THREADS", "")))
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _twin_affordable(work: float) -> bool:
    """Whether a call of ``work`` multiply-adds runs its twin in place of numba: a short run
    that has not loaded numba, with that much of :data:`TWIN_BUDGET` left (then spent)."""
    global _twin_work
    if not _short.get() or loaded() or not work <= TWIN_BUDGET:
        return False
    with _lock:
        if _twin_work + work > TWIN_BUDGET:
            return False
        _twin_work += work
    return True


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

    if os.environ.get("NUMBA_CACHE_LOCATOR_CLASSES"):
        return True  # the user's own locators
    source = str(JIT_PACKAGE / "__init__.py")  # named, not imported: importing it compiles
    locators: list[Any] = list(FunctionCache._impl_class._locator_classes)
    for locator in locators:
        try:
            if locator.from_function(_probe, source) is not None:
                return True
        except Exception:  # a locator that cannot tell counts as none
            continue
    return False


def _probe() -> None:
    """A function to ask numba's cache locators about (they look at its source file)."""


def private_cache_dir() -> Path:
    """``<tmp>/convtool-numba-<uid>``, created mode 0700 and owned by this user.

    A cache directory others can write to would run their code in this process, so that name
    is used only when it is a real directory of this user's that no one else can enter: one
    made by another user (or a symlink, a file, a directory opened to others) is refused, and
    a fresh directory from ``tempfile.mkdtemp`` (mode 0700) serves this run instead.
    """
    uid = os.getuid() if hasattr(os, "getuid") else None
    path = Path(tempfile.gettempdir()) / f"convtool-numba-{0 if uid is None else uid}"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    if not _private(path.lstat(), uid):
        path = Path(tempfile.mkdtemp(prefix="convtool-numba-"))
    return path


def _private(info: os.stat_result, uid: int | None) -> bool:
    """Whether ``info`` is a directory of user ``uid`` with no access for anyone else
    (``uid`` None: a system without owners, any directory)."""
    if not stat.S_ISDIR(info.st_mode):
        return False
    return uid is None or (info.st_uid == uid and not info.st_mode & 0o077)


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
    name: str,
    args: tuple[Any, ...],
    twin: Callable[..., None],
    *,
    now: bool = False,
    work: float = math.inf,
) -> Callable[..., None]:
    """``_jit.<name>`` when its specialisation for ``args`` is compiled (or ``now``, or the
    policy says so: it is then compiled on its first call); else ``twin``, and the
    specialisation is compiled in the background for later calls. ``twin`` too, with numba
    left unloaded, in a short run whose ``work`` (the call's multiply-adds, or an equivalent)
    fits in what is left of :data:`TWIN_BUDGET` (unless ``now``)."""
    if not now and _twin_affordable(work):
        return twin
    jit = core()
    function = getattr(jit, name)
    types = argument_types(function, args)
    is_ready = ready(function, types)  # asked first: loaded from the cache, nothing compiles
    if is_ready or now or policy() == "now":
        if not is_ready:
            notify_compiling()
        return function
    schedule(name, types)
    return twin


def call(name: str, args: tuple[Any, ...]) -> Any:
    """``_jit.<name>(*args)`` for the jitted code that has no twin (the FFT path, learn):
    compiled now when it must be, with the note."""
    function = getattr(core(), name)
    if not ready(function, argument_types(function, args)):
        notify_compiling()
    return function(*args)


def run(
    name: str,
    args: tuple[Any, ...],
    twin: Callable[..., None],
    *,
    now: bool,
    work: float = math.inf,
) -> None:
    """``choose(name, args, twin, now=now, work=work)(*args)``."""
    choose(name, args, twin, now=now, work=work)(*args)


def notify_compiling() -> None:
    """Show the run's compiling note (see :func:`configured`) once per process."""
    global _noted
    note = _note.get()
    with _lock:
        if _noted or note is None:
            return
        _noted = True
    note(
        "compiling the filter core for this kind of kernel and image (once; later runs load "
        "it from numba's cache)"
    )


def schedule(name: str, types: tuple[Any, ...]) -> None:
    """Have ``_jit.<name>`` compiled for ``types`` once this process has ended, by a background
    process (one per process, started with the first request: it reads the requests from a
    pipe and starts compiling when the pipe closes, so that it never shares the cores with
    the run that asked)."""
    global _child
    with _lock:
        if (name, types) in _scheduled:
            return
        _scheduled.add((name, types))
        try:
            if _child is None:
                _child = _start_child()
            assert _child.stdin is not None
            _child.stdin.write(pickle.dumps((name, types)))
            _child.stdin.flush()
        except (OSError, pickle.PicklingError):
            pass  # no background compile: a later run asks again


def _start_child() -> subprocess.Popen[bytes]:
    import numba

    env = dict(os.environ)
    cache = numba.config.CACHE_DIR  # type: ignore[attr-defined]
    if cache:
        env["NUMBA_CACHE_DIR"] = str(cache)  # the private fallback, if core() chose it
    return subprocess.Popen(
        [sys.executable, "-m", "convtool.compiled"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # a Ctrl-C or hang-up of the run does not reach it
        close_fds=True,
    )


def _compile_from_stdin() -> None:
    """The background process: read the requests until the parent's end closes the pipe, then
    compile them, one compiling process at a time per user."""
    import fcntl

    jobs = []
    with contextlib.suppress(EOFError, pickle.UnpicklingError):
        while True:
            jobs.append(pickle.load(sys.stdin.buffer))
    lock = Path(tempfile.gettempdir()) / f"convtool-compile-{os.getuid()}.lock"
    try:  # never through a link: the name is in a directory everyone writes to
        held = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError:
        held = -1  # compile without waiting for the others
    try:
        if held >= 0:
            fcntl.flock(held, fcntl.LOCK_EX)
        jit = core()
        for name, types in jobs:
            getattr(jit, name).compile(types)
    finally:
        if held >= 0:
            os.close(held)


def _lowest_priority() -> None:
    """Give the cores to everything else: nice 19 and, since the child leads a session of its
    own and Linux shares the cores between sessions first (autogroups), the session's nice too;
    then the idle scheduling class where there is one."""
    with _quiet():
        os.nice(19)
    with _quiet():
        Path("/proc/self/autogroup").write_text("19")
    with _quiet():
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def _quiet() -> Any:
    return contextlib.suppress(OSError, AttributeError, ValueError)


if __name__ == "__main__":
    _lowest_priority()
    _compile_from_stdin()
