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
from convtool.errors import ImageError, UsageError


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
    for absolute, given in names:
        message = message.replace(absolute, given)
    return message


def map_on_cluster(
    address: str, function: Callable[..., Any], items: Sequence[Any], *args: Any
) -> Iterator[tuple[int, bool, Any]]:
    """Run ``function(item, *args)`` for every item on the Dask cluster at ``address``.

    Yields ``(index of the item, True, result)``, or ``(index, False, "Type: message")`` for a
    task that raised (or whose worker died), as tasks complete. Each task is one call: for
    ``convtool apply`` one file, read, filtered and written by a worker, which must see the
    same paths. Raises UsageError when Dask is missing, ImageError when the scheduler cannot
    be reached.
    """
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise UsageError(
            "--scheduler needs Dask's distributed scheduler: pip install 'convtool[dask]' "
            "(on this machine and on every worker)"
        ) from None
    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise ImageError(f"cannot reach the Dask scheduler at {address!r} ({exc})") from None
    try:
        futures = {
            client.submit(_locked, function, item, *args, pure=False): index
            for index, item in enumerate(items)
        }
        for future in as_completed(futures):
            index = futures[future]
            if future.status == "finished":
                yield index, True, future.result()
            else:
                error = future.exception()
                yield index, False, f"{type(error).__name__}: {error}"
            future.release()
    finally:
        client.close()


def _locked(function: Callable[..., Any], *args: Any) -> Any:
    """One task's call, holding the worker's core lock (see :data:`convtool.dask.CORE_LOCK`):
    a worker may filter arrays for ``correlate_dask`` beside it."""
    from convtool.dask import CORE_LOCK

    with CORE_LOCK:
        return function(*args)
