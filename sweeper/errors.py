"""Errors sweeper raises on purpose: each names where, what and how to fix it."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

# A sweep file with more mistakes than this lists this many, then says how many more there are.
SHOWN = 20
# The command line sets this while it runs: a fix then names `--fresh`, not `fresh=True`.
SHELL = False


def command(*words: object) -> str:
    """A sweeper command line for a hint or a fix, ready to paste: a results folder may hold a space."""
    return shlex.join(["sweeper", *map(str, words)])


def option(name: str) -> str:
    """A launch option as the user gives it where they are: ``--retry-failed`` on the command line,
    ``retry_failed=True`` to :func:`sweeper.launch` (whose spec may come from a file all the same)."""
    return "--" + name.replace("_", "-") if SHELL else f"{name}=True"


class SweeperError(Exception):
    """Base of every error sweeper reports to the user without a traceback (exit code 2)."""


class SpecError(SweeperError):
    """A sweep file or a spec dict breaks a rule.

    The message always carries the source (file or ``<dict>``), the field path and the fix, so the
    CLI can print it as is. ``line``/``column`` (1-based) point into the sweep file when known.
    A spec with several mistakes raises one SpecError for all of them, in file order: the attributes
    are the first mistake's, ``errors`` holds every one.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str = "<dict>",
        field: str = "",
        fix: str = "",
        line: int = 0,
        column: int = 0,
        more: Sequence[SpecError] = (),
    ):
        self.source, self.field, self.problem, self.fix = source, field, message, fix
        self.line, self.column = line, column
        self.errors: tuple[SpecError, ...] = (self, *more)
        text = "\n".join(e.one() for e in self.errors[:SHOWN])
        if len(self.errors) > SHOWN:
            text += f"\nand {len(self.errors) - SHOWN} more"
        super().__init__(text)

    def one(self) -> str:
        """This mistake alone: ``file:line:column: field: problem`` and its fix."""
        where = f"{self.source}:{self.line}:{self.column}" if self.line else self.source
        text = f"{where}: {self.field}: {self.problem}" if self.field else f"{where}: {self.problem}"
        return text + (f"\n  fix: {self.fix}" if self.fix else "")


class ObjectiveError(SweeperError):
    """The objective itself is unusable (cannot be imported, or returns the wrong kind of value).

    Unlike an exception raised inside one run, which is recorded as a failed run, this stops the
    sweep: every other run would fail the same way.
    """


class StorageError(SweeperError):
    """The results folder cannot be written (disk full, read-only, over quota).

    Raised by the one write seam (``sweeper.results.atomic.replacing``) with the path and the
    system's reason; the engine stops on it cleanly, keeping every run already written.
    """
