"""A batch on a Dask cluster: one task per file, reported as the local batch reports.

Each task is :func:`convtool.batch.pipeline.run_job`, the local batch's per-file run, on a
worker that must see the same paths. Dask comes with the optional extra
``pip install 'convtool[dask]'``; nothing here is imported without ``--scheduler``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from convtool.batch.jobs import Job, make_directory
from convtool.batch.pipeline import Failed, NoteSink, Settings, run_job
from convtool.errors import ImageError, UsageError, quoted


def run_on_cluster(
    jobs: list[Job],
    settings: Settings,
    address: str,
    *,
    notes: NoteSink,
    failed: Failed,
    advance: Callable[[], None] = lambda: None,
) -> list[str]:
    """Every job as a task on the cluster at ``address``; the inputs that failed.

    Notes and failures name the files as the user did, not by the absolute paths sent to the
    workers; they are reported as tasks complete.
    """
    check_address(address)
    remote = [_remote(job) for job in jobs]
    failures: list[str] = []
    for index, ok, outcome in map_on_cluster(address, run_job, remote, settings):
        source = jobs[index].source
        messages, error = outcome if ok else ([], f"the task failed on the cluster: {outcome}")
        names = (
            (remote[index].source, source),
            (str(remote[index].target), str(jobs[index].target)),
        )
        for message in messages:
            notes(source, _renamed(message, names))
        if error is not None:
            failed(source, _renamed(error, names))
            failures.append(source)
        advance()
    return failures


def _remote(job: Job) -> Job:
    """The job as a worker sees it: absolute paths, the output's folder created."""
    if job.source == "-" or job.target is None:
        raise UsageError(
            "--scheduler sends files to a cluster: standard input and output cannot go "
            "there; name input files and -o FILE, --out-dir or an -o template"
        )
    make_directory(job.target.parent)
    return Job(os.path.abspath(job.source), job.target.absolute())


def _renamed(message: str, names: tuple[tuple[str, str], ...]) -> str:
    """A worker's message with the absolute paths sent to it named as the user named them
    (quoted first: see :func:`convtool.errors.quoted`)."""
    for absolute, given in names:
        message = message.replace(quoted(absolute), quoted(given)).replace(absolute, given)
    return message


RETRIES = 3
"""Times a result that could not be fetched is waited for again (Dask's own
``allowed-failures`` for a task whose worker dies)."""

SCHEMES = ("tcp", "tls", "ws", "wss")
"""The transports ``--scheduler`` takes (``tls`` and ``wss`` with Dask's TLS settings)."""


def check_address(address: str) -> str:
    """``address`` checked before any work (Dask is imported only for ``tls://``); its scheme
    (``tcp`` when none is written). UsageError for ``inproc://`` (one Python process's own),
    an unknown scheme, a port out of range, TLS without its certificates."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    scheme = scheme.lower()
    if scheme == "inproc":
        raise UsageError(
            f"--scheduler {address!r}: inproc:// addresses live inside one Python process, and "
            "convtool's is not the cluster's; give the scheduler's tcp://HOST:PORT, as "
            "'dask scheduler' prints it"
        )
    if scheme not in SCHEMES:
        raise UsageError(
            f"--scheduler {address!r}: unknown protocol {scheme}://; give the scheduler's "
            "address as 'dask scheduler' prints it, tcp://HOST:PORT (or tls://, ws://, wss://)"
        )
    host, port = _host_and_port(rest)
    if not host:
        raise UsageError(f"--scheduler {address!r}: no host; give tcp://HOST:PORT")
    if port is not None and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise UsageError(
            f"--scheduler {address!r}: {port!r} is not a port (1 to 65535); a Dask scheduler "
            "listens on 8786 unless told otherwise"
        )
    if scheme in ("tls", "wss"):
        _security(address, scheme)
    return scheme


def _host_and_port(rest: str) -> tuple[str, str | None]:
    """``HOST:PORT`` split (``[::1]:8786`` for IPv6); no port: None."""
    rest = rest.rstrip("/")
    if rest.startswith("["):
        host, _, after = rest[1:].partition("]")
        return host, after[1:] if after.startswith(":") else None
    host, sep, port = rest.rpartition(":")
    return (host, port) if sep else (rest, None)


def map_on_cluster(
    address: str, function: Callable[..., Any], items: Sequence[Any], *args: Any
) -> Iterator[tuple[int, bool, Any]]:
    """Run ``function(item, *args)`` for every item on the Dask cluster at ``address``.

    Yields ``(index of the item, True, result)``, or ``(index, False, "Type: message")`` for a
    task that raised (or whose workers died), as tasks complete. Each task is one call: for
    ``convtool apply`` one file, read, filtered and written by a worker, which must see the
    same paths. A task whose worker dies is run again on another (Dask's ``allowed-failures``).
    Every wait is bounded by Dask's connect timeout (``distributed.comm.timeouts.connect``):
    a scheduler that does not answer, or a cluster without workers, is an ImageError.
    Raises UsageError when Dask is missing or the address is not one.
    """
    scheme = check_address(address)
    try:
        import dask
        from dask.utils import parse_timedelta
        from distributed import Client
    except ImportError:
        raise _needs_dask() from None
    timeout = float(parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s"))
    security = _security(address, scheme)
    _probe(address, timeout, security)
    try:
        client = Client(address, timeout=timeout, security=security)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ImageError(f"cannot reach the Dask scheduler at {address!r} ({exc})") from None
    try:
        _wait_for_a_worker(client, address, timeout)
        futures = {
            client.submit(_locked, function, item, *args, pure=False): index
            for index, item in enumerate(items)
        }
        for future, ok, outcome in _completed(client, list(futures), address, timeout):
            yield futures[future], ok, outcome
    finally:
        client.close(timeout=timeout)


def _needs_dask() -> UsageError:
    return UsageError(
        "--scheduler needs Dask's distributed scheduler: pip install 'convtool[dask]' "
        "(on this machine and on every worker)"
    )


def _security(address: str, scheme: str) -> Any:
    """Dask's security settings for the client; UsageError for ``tls://`` or ``wss://``
    without the certificates they need."""
    try:
        from distributed.security import Security
    except ImportError:
        raise _needs_dask() from None

    security = Security()
    if scheme in ("tls", "wss") and security.get_connection_args("client")["ssl_context"] is None:
        raise UsageError(
            f"--scheduler {address!r}: {scheme}:// needs Dask's TLS settings for the client, "
            "as any Dask client does: set distributed.comm.tls.ca-file, .client.cert and "
            ".client.key in Dask's configuration (or DASK_DISTRIBUTED__COMM__TLS__CA_FILE, "
            "..._CLIENT__CERT, ..._CLIENT__KEY); or use tcp://"
        )
    return security


def _probe(address: str, timeout: float, security: Any) -> None:
    """Ask the scheduler who it is, within ``timeout``: Dask's own connection waits for ever
    on a listener that accepts and never answers."""
    import asyncio

    from distributed.comm import connect

    async def ask() -> None:
        comm = await connect(address, timeout=timeout, **security.get_connection_args("client"))
        try:
            await comm.write({"op": "identity", "reply": True})
            await comm.read()
        finally:
            comm.abort()

    try:
        asyncio.run(asyncio.wait_for(ask(), timeout))
    except TimeoutError:
        raise ImageError(
            f"the Dask scheduler at {address!r} did not answer within {timeout:g} s (Dask's "
            "distributed.comm.timeouts.connect); is a Dask scheduler listening there?"
        ) from None
    except (OSError, ValueError, TypeError) as exc:
        raise ImageError(f"cannot reach the Dask scheduler at {address!r} ({exc})") from None


def _wait_for_a_worker(client: Any, address: str, timeout: float) -> None:
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise ImageError(
            f"the Dask scheduler at {address!r} has no worker (waited {timeout:g} s); start "
            f"one: dask worker {address}"
        ) from None


def _completed(
    client: Any, futures: list[Any], address: str, timeout: float
) -> Iterator[tuple[Any, bool, Any]]:
    """Each future as it completes: ``(future, True, result)`` or ``(future, False, "Type:
    message")``. A result lost with its worker is waited for again (the scheduler runs its
    task again). Each ``timeout`` with none completed, and whenever the scheduler's connection
    fails, the scheduler is asked whether it still answers and has workers: a long task goes
    on, a dead cluster ends the run (ImageError)."""
    from concurrent.futures import CancelledError

    from distributed import wait

    pending = set(futures)
    tries: dict[Any, int] = {}

    def alive() -> None:
        _check_alive(client, address, timeout, len(pending), len(futures))

    while pending:
        try:
            done, pending = wait(pending, timeout=timeout, return_when="FIRST_COMPLETED")
        except (TimeoutError, CancelledError, OSError):
            alive()
            continue
        for future in done:
            tries[future] = tries.get(future, 0) + 1
            outcome = _outcome(future, timeout, last=tries[future] > RETRIES)
            if outcome is None:
                pending.add(future)
                continue
            if not outcome[0] and future.status != "error":
                alive()  # cancelled, or its result unreachable: the cluster's fault?
            yield future, *outcome
            future.release()


def _outcome(future: Any, timeout: float, *, last: bool) -> tuple[bool, Any] | None:
    """A completed future's result, or its error's ``"Type: message"``; None to wait for it
    again: its result went with a worker that died since (the scheduler runs the task again),
    or could not be fetched (unless this is the ``last`` try)."""
    if future.status == "finished":
        try:
            return True, future.result(timeout=timeout)
        except Exception as exc:
            if future.status in ("lost", "pending") or not last:
                return None
            return False, f"{type(exc).__name__}: {exc}"
    if future.status == "error":
        error = future.exception(timeout=timeout)
        return False, f"{type(error).__name__}: {error}"
    if future.status in ("lost", "pending"):
        return None
    return False, f"the task was {future.status} by the scheduler"


def _check_alive(client: Any, address: str, timeout: float, left: int, total: int) -> None:
    """ImageError unless the scheduler answers within ``timeout`` and has a worker."""
    undone = f"{left} of {total} files not done (every file written is whole)"
    try:
        identity = client.sync(client.scheduler.identity, callback_timeout=timeout)
    except Exception as exc:  # closed, reset, timed out, cancelled: Dask's many kinds
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageError(
            f"lost the Dask scheduler at {address!r} ({reason}); {undone}: run the batch "
            "again once the scheduler is back"
        ) from None
    if not identity.get("workers"):
        raise ImageError(
            f"the Dask cluster at {address!r} has no worker left; {undone}: start workers "
            f"(dask worker {address}) and run the batch again"
        )


def _locked(function: Callable[..., Any], *args: Any) -> Any:
    """One task's call, holding the worker's core lock (see :data:`convtool.dask.CORE_LOCK`):
    a worker may filter arrays for ``correlate_dask`` beside it."""
    from convtool.dask import CORE_LOCK

    with CORE_LOCK:
        return function(*args)
