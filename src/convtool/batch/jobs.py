"""Batches: the inputs a command names, expanded, and where each result goes.

Directories and quoted patterns (``'shots/*.jpg'``, as Windows shells and some scripts pass
them) become files here, and every output name — ``-o FILE``, ``--out-dir DIR``, an ``-o``
template — is planned and checked before anything is read or written. Nothing here decodes a
picture; Pillow is asked only which extensions are images, when a directory is given.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePath

from convtool.errors import ImageError, UsageError, quoted

PLACEHOLDERS = ("stem", "name", "ext", "dir")
"""What an ``-o`` template may hold: ``{stem}`` (``x`` of ``a/x.png``), ``{name}``
(``x.png``), ``{ext}`` (``png``) and ``{dir}``, the input's folder (see :class:`Source`)."""

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_PATTERN = re.compile(r"[*?[]")
_SEPARATORS = tuple(sep for sep in (os.sep, os.altsep, "/") if sep)
_SEPARATOR = re.compile("|".join(re.escape(sep) for sep in set(_SEPARATORS)))

SKIPPED_IN_DIRECTORIES = (".txt", ".csv")
"""Matrix files a directory's listing leaves out: in a folder of pictures a ``.txt`` or
``.csv`` is more often notes than a matrix (``.npy`` files are taken; text matrices are named
one by one)."""


@dataclass(frozen=True)
class Job:
    """One input and where its result goes (None: standard output)."""

    source: str
    target: Path | None


@dataclass(frozen=True)
class Source:
    """An input file, and its folder as the output names use it.

    ``folder`` (the ``{dir}`` of templates): for a file found in a directory given, its folder
    relative to that directory (``.`` at its top, ``sub/deeper`` below); for a file named
    (or matched by a pattern), its folder as written (``.`` for a bare name). ``found``: the
    file came from a directory given, so ``--out-dir`` keeps its folder.
    """

    path: str
    folder: str = "."
    found: bool = False


def expand_inputs(
    inputs: list[str], *, recursive: bool = False, skip: Path | None = None
) -> list[Source]:
    """The files ``inputs`` name, in order: a directory's images (its sub-folders' too with
    ``recursive``; the folder ``skip``, the output directory, left out), a pattern's matches
    (``**`` reaching into sub-folders with ``recursive``), other names as they are (a missing
    file is reported by its reader, with the other inputs run)."""
    sources: list[Source] = []
    for given in inputs:
        if given != "-" and os.path.isdir(given):
            sources.extend(_directory(given, recursive=recursive, skip=skip))
        elif _PATTERN.search(given) and not os.path.lexists(given):
            sources.extend(_matches(given, recursive=recursive))
        else:
            sources.append(Source(given, _folder_as_written(given)))
    return sources


def _folder_as_written(path: str) -> str:
    return os.path.normpath(os.path.dirname(path) or ".")


def _directory(root: str, *, recursive: bool, skip: Path | None) -> list[Source]:
    """The files of ``root`` that convtool reads, in name order, a folder's files before its
    sub-folders'; hidden files and folders (``.thumbnails``, ``._x.jpg``) left out."""
    from convtool.io.formats import MATRIX_FORMATS, image_suffixes

    readable = (image_suffixes() | set(MATRIX_FORMATS)) - set(SKIPPED_IN_DIRECTORIES)
    skipped = os.path.realpath(skip) if skip is not None else None
    found: list[Source] = []
    below = 0

    def unreadable(exc: OSError) -> None:
        raise ImageError(f"{quoted(exc.filename)}: cannot be read ({exc.strerror or exc})")

    for folder, folders, files in os.walk(root, onerror=unreadable):
        folders[:] = sorted(
            name
            for name in folders
            if not name.startswith(".") and os.path.realpath(os.path.join(folder, name)) != skipped
        )
        if not recursive:
            below = len(folders)
            folders.clear()
        relative = os.path.relpath(folder, root)
        for name in sorted(files):
            path = os.path.join(folder, name)
            if (
                not name.startswith(".")
                and os.path.splitext(name)[1].lower() in readable
                and os.path.isfile(path)
            ):
                found.append(Source(path, relative, found=True))
    if not found:
        more = "; add --recursive to look in its sub-folders" if below else ""
        raise ImageError(
            f"{quoted(root)}: no images in this directory (convtool takes its image files, such as "
            f".png, .jpg and .tif, and .npy matrices; .txt and .csv are named one by one){more}"
        )
    return found


def _matches(pattern: str, *, recursive: bool) -> list[Source]:
    """The files a pattern the shell left unexpanded matches, in name order (as a shell passes
    them; a matched directory is left out: the pattern picks files)."""
    if "**" in pattern and not recursive:
        raise UsageError(
            f"{pattern!r}: '**' reaches into sub-folders with --recursive; add it (or use '*')"
        )
    matches = sorted(m for m in glob.glob(pattern, recursive=recursive) if os.path.isfile(m))
    if not matches:
        raise ImageError(f"{quoted(pattern)}: no file matches this pattern")
    return [Source(m, _folder_as_written(m)) for m in matches]


def plan_jobs(
    inputs: list[str],
    output: str | None,
    out_dir: Path | None,
    *,
    recursive: bool = False,
    stdout_is_terminal: bool = False,
) -> list[Job]:
    """Where each input's result goes; UsageError (before anything is written) when unclear.

    One input: ``-o FILE``, ``-o -`` (standard output), ``--out-dir DIR``, an ``-o`` template,
    or nothing (standard output when it is not a terminal). Several inputs, or a directory:
    ``--out-dir`` (a directory's sub-folders kept under it) and/or an ``-o`` template with
    ``{stem}``, ``{name}``, ``{ext}``, ``{dir}``. Two inputs writing the same file, or an output
    that is another input, are refused; so is standard output when ``stdout_is_terminal``.
    """
    if not inputs:
        raise UsageError("no input given; name image or matrix files, or - for standard input")
    if output is not None and output != "-":
        check_template(output)
    sources = expand_inputs(inputs, recursive=recursive, skip=out_dir)
    template = output is not None and output != "-" and _PLACEHOLDER.search(output) is not None
    _check_destination(inputs, sources, output, out_dir, template=template)
    jobs = []
    for source in sources:
        if source.path == "-" and (template or out_dir is not None):
            raise UsageError(
                "standard input has no file name for --out-dir or an -o template; use -o FILE"
            )
        if output == "-":
            target = None
        elif output is not None:
            name = expand_template(output, source) if template else output
            target = out_dir / name if out_dir is not None else Path(name)
        elif out_dir is not None:
            folder = source.folder if source.found else "."
            target = out_dir / folder / _file_name(source.path)
        else:
            if stdout_is_terminal:
                raise UsageError(
                    "standard output is a terminal, and an image there is garbage; give an "
                    "output file with -o FILE (or -o - to write to standard output anyway)"
                )
            target = None
        jobs.append(Job(source.path, target))
    _check_targets(
        jobs,
        sources,
        plain_output=output is not None and not template and out_dir is None,
        template=output if template else None,
    )
    if out_dir is not None:
        make_directory(out_dir)
    return jobs


def _check_destination(
    inputs: list[str],
    sources: list[Source],
    output: str | None,
    out_dir: Path | None,
    *,
    template: bool,
) -> None:
    """The options that say where results go, checked against each other and the inputs."""
    if len(sources) > 1 or any(s.found for s in sources):
        if output == "-":
            raise UsageError("-o - (standard output) takes one input; got several")
        if "-" in inputs:
            raise UsageError("standard input (-) can only be filtered alone, not in a batch")
        if not template and out_dir is None:
            last = inputs[-1]
            if output is None and len(inputs) == 2 and not os.path.lexists(last):
                # ImageMagick's habit, 'convert in.png out.png'
                raise UsageError(
                    f"{last!r} is no input file; the output is named with -o: convtool apply "
                    f"{quoted(inputs[0])} ... -o {quoted(last)}"
                )
            if any(s.found for s in sources):
                raise UsageError(
                    "a directory's images need --out-dir DIR (its sub-folders are kept) or an "
                    "-o template with {stem}, {name}, {ext} or {dir} (e.g. -o "
                    "'edges/{dir}/{stem}-sobel.png')"
                )
            raise UsageError(
                "several inputs need --out-dir DIR or an -o template with {stem}, {name}, "
                "{ext} or {dir} (e.g. -o 'edges/{stem}-sobel.png')"
            )
    if template and out_dir is not None and _climbs(str(output)):
        raise UsageError(
            f"-o template {output!r} leaves --out-dir {quoted(out_dir)} (it is absolute or "
            "climbs with '..'); give one of the two, or a template relative to --out-dir"
        )
    if output == "-" and out_dir is not None:
        raise UsageError("-o - writes to standard output; it cannot be combined with --out-dir")
    if output is not None and output != "-" and not template and out_dir is not None:
        raise UsageError(
            f"-o {quoted(output)} names one output file and --out-dir {quoted(out_dir)} a "
            "directory for the results: give one of the two (an -o template with {stem} may go "
            "with --out-dir)"
        )


def _file_name(path: str) -> str:
    """The name ``--out-dir`` gives the result of ``path``: its last part, never one that
    climbs (``a/..``)."""
    name = PurePath(path).name
    if name in ("", ".", ".."):
        raise UsageError(
            f"{quoted(path)} ends in {name or path!r}, not a file name, so --out-dir cannot name "
            "its result; name the file itself"
        )
    return name


def make_directory(directory: Path) -> None:
    """Create ``directory`` and its parents; ImageError saying why it cannot be."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageError(
            f"{quoted(directory)}: cannot create the directory ({exc.strerror or exc})"
        ) from None


def expand_template(template: str, source: Source) -> str:
    """``template`` with its placeholders filled from ``source``; UsageError for an unknown
    one, and for a value that would leave the folder it is put in: a ``{dir}`` of ``..`` or an
    absolute folder, a ``{stem}`` of ``..`` (``...png``) standing as a folder of its own, a
    name holding a separator. A placeholder never adds a folder, except ``{dir}``'s own.

    >>> expand_template("edges/{dir}/{stem}-{ext}.tif", Source("shots/sub/x.png", "sub", True))
    'edges/sub/x-png.tif'
    """
    check_template(template)
    path = PurePath(source.path)
    values = {
        "stem": path.stem,
        "name": path.name,
        "ext": path.suffix.lstrip("."),
        "dir": source.folder,
    }

    def refused(key: str, why: str) -> UsageError:
        instead = (
            "name the folder that holds the inputs instead (convtool apply DIR --recursive: "
            "{dir} is then relative to DIR)"
            if key == "dir"
            else "rename the file, or put the placeholder beside other text (e.g. {stem}-out)"
        )
        return UsageError(
            f"-o template {template!r}: {{{key}}} of {source.path!r} is {values[key]!r}, which "
            f"{why}; {instead}"
        )

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise UsageError(
                f"-o template {template!r}: unknown placeholder {{{key}}}; use "
                + ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
            )
        value = values[key]
        if key == "dir" and _climbs(value):
            raise refused(key, "would put the result outside the output folder")
        if key != "dir" and any(sep in value for sep in _SEPARATORS):
            raise refused(key, "would add a folder to the output name")
        return value

    for part in _SEPARATOR.split(template):
        filled = _PLACEHOLDER.sub(substitute, part)
        if filled != part and ".." in _SEPARATOR.split(filled):
            key = _PLACEHOLDER.findall(part)[0]
            raise refused(
                key, f"makes the folder {filled!r} of {part!r}, climbing out of the output folder"
            )
    return _PLACEHOLDER.sub(substitute, template)


def check_template(output: str) -> None:
    """UsageError for a brace of ``output`` that opens or closes no placeholder
    (``box/{stem.png``): ``{`` and ``}`` are the template's, in any ``-o``."""
    stray = next(
        (m for m in re.finditer(r"[{}]", _PLACEHOLDER.sub(lambda m: " " * len(m.group()), output))),
        None,
    )
    if stray is None:
        return
    what = "is never closed" if stray.group() == "{" else "closes no placeholder"
    raise UsageError(
        f"-o template {output!r}: the {stray.group()!r} at position {stray.start() + 1} {what}; "
        "a placeholder is written whole, e.g. -o 'box/{stem}.png' ("
        + ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
        + ")"
    )


def _climbs(value: str) -> bool:
    """Whether a placeholder's value leaves the folder it is put in: ``..`` or absolute."""
    return os.path.isabs(value) or ".." in PurePath(value).parts


def _check_targets(
    jobs: list[Job], sources: list[Source], *, plain_output: bool, template: str | None
) -> None:
    from convtool.io.formats import format_for_path

    seen: dict[str, Source] = {}
    inputs = {_identity(job.source): job.source for job in jobs if job.source != "-"}
    for job, source in zip(jobs, sources, strict=True):
        if job.target is None:
            continue
        key = _identity(str(job.target))
        if key in seen:
            raise UsageError(
                f"inputs {seen[key].path!r} and {job.source!r} would both write "
                f"{str(job.target)!r}; nothing was written ({_apart(seen[key], source, template)})"
            )
        seen[key] = source
        other = inputs.get(key)
        if other is not None and other != job.source:
            raise UsageError(
                f"the output of {job.source!r} would overwrite the input {other!r} before it "
                "is read; choose another output name"
            )
        if job.target.is_dir():
            raise ImageError(
                f"{quoted(job.target)}: is a directory; give a file name for the output (or "
                f"--out-dir {quoted(job.target)} to write into it under the input's name)"
            )
        try:
            format_for_path(job.target)  # an unknown extension is refused before any work
        except UsageError:
            suffix = job.target.suffix
            if plain_output or not suffix or suffix.lower() != Path(job.source).suffix.lower():
                raise
            example = "{dir}/{stem}.png" if source.found else "{stem}.png"
            raise UsageError(
                f"{quoted(job.target)}: convtool cannot write {suffix} files, and this name "
                f"comes from the input {job.source!r}; give the results another extension with "
                f"an -o template, e.g. -o '{example}' (or .tif)"
            ) from None
        if plain_output and not job.target.parent.is_dir():
            raise ImageError(
                f"{quoted(job.target)}: directory {str(job.target.parent)!r} does not exist; "
                "create it first (--out-dir and -o templates create theirs)"
            )


def _apart(first: Source, second: Source, template: str | None) -> str:
    """How to give two inputs that would write one file their own outputs."""
    if _identity(first.path) == _identity(second.path):
        return f"{second.path!r} is named twice"
    by_folder = (
        first.folder != second.folder
        and not _climbs(first.folder)
        and not _climbs(second.folder)
        and (template is None or "{dir}" not in template)
    )
    if by_folder:
        return "keep their folders with {dir} in an -o template, e.g. -o '{dir}/{name}'"
    one, other = PurePath(first.path), PurePath(second.path)
    if one.stem == other.stem and one.suffix.lower() != other.suffix.lower():
        return "tell them apart with {ext} in an -o template, e.g. -o '{stem}-{ext}.png'"
    common = os.path.commonpath([os.path.abspath(first.path), os.path.abspath(second.path)])
    shown = os.path.relpath(common)
    return (
        f"name the folder that holds both, convtool apply {common if _climbs(shown) else shown} "
        "--recursive, to keep their sub-folders under --out-dir, or tell them apart in an -o "
        "template"
    )


def _identity(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))
