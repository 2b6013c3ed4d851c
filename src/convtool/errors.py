"""The exceptions convtool raises: one base class the CLI turns into a clean stderr line."""

from __future__ import annotations


class ConvtoolError(Exception):
    """Base of every error convtool raises on purpose; its message is shown to the user as is."""

    exit_code = 1


class UsageError(ConvtoolError):
    """Options that contradict each other or are out of range (exit code 2)."""

    exit_code = 2


class KernelError(ConvtoolError):
    """A kernel spec, kernel file or kernel matrix that cannot be used."""


class ImageError(ConvtoolError):
    """An image or matrix that cannot be read, filtered or written."""


class LearnError(ConvtoolError):
    """A kernel that cannot be fitted from the pairs given."""


def quoted(name: object) -> str:
    """A file name as every message shows it: as it is when it is plain printable text, else
    in quotes with its control characters escaped (``'a\\nb.png'``), so that no name can split a
    message or forge a line of its own (as ``ls`` quotes such names)."""
    text = str(name)
    return text if text and text.isprintable() else repr(text)


def excerpt(text: str, limit: int = 120) -> str:
    """``text`` quoted as a message shows what came in (``'1 0 -1'``), its middle cut past
    ``limit`` characters (``'1 1 1 ... 1 1' (2051 characters)``): an error stays one readable
    line whatever was typed."""
    if len(text) <= limit:
        return repr(text)
    head, tail = text[: limit * 2 // 3], text[-(limit // 3) :]
    return f"{head + ' ... ' + tail!r} ({len(text)} characters)"


def one_line(message: str) -> str:
    """``message`` with its non-printable characters escaped (a newline as ``\\n``): what the
    command prints is one line per message, whatever a library's text or a name held."""
    if message.isprintable():
        return message
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
