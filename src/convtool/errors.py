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
